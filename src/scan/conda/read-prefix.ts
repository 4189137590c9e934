// Reads a Conda prefix's metadata once: conda-meta records and unmanaged dist-infos, indexed by top-level module name.

import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  InputError,
  compare,
  isNotFound,
  matchSpecName,
  readCondaRecord,
  type CondaRecord,
} from "../../core/index.js";
import { builtinModules } from "./builtin-modules.js";
import { mapLimit, readDistInfos } from "./dist-info.js";
import type { InstalledPythonPackage } from "./installed-package.js";
import { moduleNameOf, normaliseName } from "./module-names.js";

/** What a top-level module name belongs to. */
export type ModuleOwner =
  | { type: "stdlib" }
  | { type: "package"; id: string }
  | { type: "editable"; name: string; version: string; source: string };

/** Everything a Python scan needs to know about the prefix. */
export interface CondaPrefix {
  prefix: string;
  python: InstalledPythonPackage;
  /** `3.11` for 3.11.7. */
  pythonMajorMinor: string;
  /** The python record's conda subdir, e.g. `linux-64`. */
  platform: string;
  /** `lib/pythonX.Y/site-packages`. */
  sitePackages: string;
  packages: Map<string, InstalledPythonPackage>;
  modules: Map<string, ModuleOwner>;
  /** Modules compiled into the interpreter (no file). */
  builtins: ReadonlySet<string>;
}

/**
 * Reads `<prefix>/conda-meta/*.json` and the site-packages `*.dist-info` directories no record
 * owns, and builds the module-name → owner index. Package contents are never read.
 * @throws InputError ENVPACK_INPUT_ENV_NOT_FOUND, ENVPACK_INPUT_ENV_NOT_CONDA, ENVPACK_INPUT_ENV_NO_PYTHON, ENVPACK_INPUT_ENV_CORRUPT
 */
export async function readCondaPrefix(
  prefix: string,
  signal?: AbortSignal,
): Promise<CondaPrefix> {
  await requireDirectory(
    prefix,
    "ENVPACK_INPUT_ENV_NOT_FOUND",
    `Conda environment not found: ${prefix}`,
    "Pass --env the prefix of an existing Conda environment (the directory that holds conda-meta/).",
  );
  const metaDir = join(prefix, "conda-meta");
  await requireDirectory(
    metaDir,
    "ENVPACK_INPUT_ENV_NOT_CONDA",
    `${prefix} is not a Conda environment (no conda-meta/)`,
    "Pass --env the prefix of a Conda environment, e.g. $CONDA_PREFIX.",
  );
  const recordFiles = (await readdir(metaDir))
    .filter((f) => f.endsWith(".json"))
    .sort(compare);
  const records = await mapLimit(recordFiles, (file) =>
    readRecord(join(metaDir, file)),
  );
  signal?.throwIfAborted();

  const pythonIndex = records.findIndex((r) => r.name === "python");
  const pythonRecord = records[pythonIndex];
  if (!pythonRecord) {
    throw new InputError(
      "ENVPACK_INPUT_ENV_NO_PYTHON",
      `${prefix} has no python package (no conda-meta record named python)`,
      {
        hint: "Install Python into the environment (`conda install -p PREFIX python`) or pass the environment your app runs in.",
        details: { prefix },
      },
    );
  }
  const pythonMajorMinor = pythonRecord.version
    .split(".")
    .slice(0, 2)
    .join(".");
  const libDir = `lib/python${pythonMajorMinor}/`;
  const sitePackages = `${libDir}site-packages`;

  const modules = new Map<string, ModuleOwner>();
  const packages = new Map<string, InstalledPythonPackage>();
  const condaNames = new Set(records.map((r) => r.name));
  const condaDistInfos = new Set<string>();
  records.forEach((record, i) => {
    const id = `conda:${record.name}`;
    if (packages.has(id)) return;
    packages.set(
      id,
      condaPackage(record, `conda-meta/${recordFiles[i]}`, condaNames),
    );
    for (const file of record.files ?? []) {
      if (file.startsWith(`${sitePackages}/`)) {
        const rest = file.slice(sitePackages.length + 1);
        const top = rest.split("/")[0] ?? "";
        if (top.endsWith(".dist-info")) condaDistInfos.add(top);
        const name = moduleNameOf(rest);
        if (name !== undefined && !modules.has(name))
          modules.set(name, { type: "package", id });
      } else if (i === pythonIndex && file.startsWith(libDir)) {
        const rest = file.slice(libDir.length);
        const name = rest.startsWith("lib-dynload/")
          ? moduleNameOf(rest.slice("lib-dynload/".length))
          : moduleNameOf(rest);
        if (name !== undefined && !modules.has(name))
          modules.set(name, { type: "stdlib" });
      }
    }
  });

  const pipPackages = await readDistInfos(prefix, sitePackages, condaDistInfos);
  const byNormalisedName = new Map<string, string>();
  for (const id of packages.keys())
    byNormalisedName.set(normaliseName(id.slice("conda:".length)), id);
  for (const pip of pipPackages)
    if (!pip.editable)
      byNormalisedName.set(normaliseName(pip.pkg.name), pip.pkg.id);
  for (const pip of pipPackages) {
    for (const name of pip.modules) {
      if (modules.has(name)) continue;
      modules.set(
        name,
        pip.editable
          ? {
              type: "editable",
              name: pip.pkg.name,
              version: pip.pkg.version,
              source: pip.editable,
            }
          : { type: "package", id: pip.pkg.id },
      );
    }
    if (pip.editable) continue;
    pip.pkg.dependencies = [
      ...new Set(
        pip.requires
          .map((r) => byNormalisedName.get(r))
          .filter((id): id is string => id !== undefined),
      ),
    ].sort(compare);
    packages.set(pip.pkg.id, pip.pkg);
  }

  const python = packages.get("conda:python") as InstalledPythonPackage;
  const builtins = await builtinModules(prefix, pythonMajorMinor, signal);
  return {
    prefix,
    python,
    pythonMajorMinor,
    platform: pythonRecord.subdir ?? "unknown",
    sitePackages,
    packages,
    modules,
    builtins,
  };
}
function condaPackage(
  record: CondaRecord,
  path: string,
  installed: Set<string>,
): InstalledPythonPackage {
  const dependencies = new Set<string>();
  for (const spec of record.depends ?? []) {
    const name = matchSpecName(spec);
    if (name !== record.name && installed.has(name))
      dependencies.add(`conda:${name}`);
  }
  const integrity = record.sha256
    ? `sha256:${record.sha256}`
    : record.md5
      ? `md5:${record.md5}`
      : null;
  return {
    id: `conda:${record.name}`,
    manager: "conda",
    name: record.name,
    version: record.version,
    ...(record.build === undefined ? {} : { build: record.build }),
    ...(record.channel === undefined ? {} : { channel: record.channel }),
    path,
    integrity,
    integritySource: integrity ? "conda-meta" : "none",
    dependencies: [...dependencies].sort(compare),
  };
}

async function readRecord(file: string): Promise<CondaRecord> {
  return (await readCondaRecord(file)).record;
}
async function requireDirectory(
  path: string,
  code: "ENVPACK_INPUT_ENV_NOT_FOUND" | "ENVPACK_INPUT_ENV_NOT_CONDA",
  message: string,
  hint: string,
): Promise<void> {
  try {
    if ((await stat(path)).isDirectory()) return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  throw new InputError(code, message, { hint, details: { path } });
}
