// A Conda prefix as the Python scanner sees it: the shared model's packages in the manifest's
// terms, indexed by top-level module name.

import { compare } from "../../core/index.js";
import {
  moduleNameOf,
  normaliseName,
  readCondaEnv,
  recordPackage,
  type CondaEnvReader,
} from "../../conda/index.js";
import { builtinModules } from "./builtin-modules.js";
import type { InstalledPythonPackage } from "./installed-package.js";

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
  /**
   * PEP 503-normalised distribution name → package id: conda record names, the dist-info names
   * conda records install (a conda name may differ from the PyPI one) and pip dist-infos.
   */
  distributions: ReadonlyMap<string, string>;
  /** Prefix-relative file → the id of the package that installed it (built on first call). */
  fileOwners(): ReadonlyMap<string, string>;
}

/**
 * Reads the prefix through the shared Conda model (`readEnv`, default a fresh read) and builds
 * the module-name → owner index from its records and pip dist-infos. Package contents are never
 * read.
 * @throws InputError ENVPACK_INPUT_ENV_NOT_FOUND, ENVPACK_INPUT_ENV_NOT_CONDA, ENVPACK_INPUT_ENV_NO_PYTHON, ENVPACK_INPUT_ENV_CORRUPT
 */
export async function readCondaPrefix(
  prefix: string,
  signal?: AbortSignal,
  readEnv: CondaEnvReader | undefined = readCondaEnv,
): Promise<CondaPrefix> {
  const env = await readEnv(prefix, signal);
  const { records, pythonMajorMinor, sitePackages } = env;
  // The interpreter answers in its own process while the index is built here.
  const builtinsPending = builtinModules(env.prefix, pythonMajorMinor, {
    memoDir: env.memoDir,
    signal,
  });
  const libDir = `lib/python${pythonMajorMinor}/`;

  const modules = new Map<string, ModuleOwner>();
  const packages = new Map<string, InstalledPythonPackage>();
  const condaNames = new Set(records.map((r) => r.record.name));
  const site = `${sitePackages}/`;
  const dynload = `${libDir}lib-dynload/`;
  // A module directory names its module by its first file: the thousands after it are skipped.
  const seenDirs = new Set<string>();
  for (const entry of records) {
    const { record } = entry;
    const id = `conda:${record.name}`;
    if (packages.has(id)) continue;
    packages.set(id, recordPackage(record, entry.metaPath, condaNames));
    const isPython = entry === env.python;
    for (const file of record.files ?? []) {
      const isPackage = file.startsWith(site);
      const root = isPackage
        ? site.length
        : !isPython || !file.startsWith(libDir)
          ? -1
          : file.startsWith(dynload)
            ? dynload.length
            : libDir.length;
      if (root < 0) continue;
      const slash = file.indexOf("/", root);
      if (slash >= 0) {
        const dir = file.slice(0, slash);
        if (seenDirs.has(dir)) continue;
        seenDirs.add(dir);
      }
      const name = moduleNameOf(file.slice(root));
      if (name !== undefined && !modules.has(name))
        modules.set(
          name,
          isPackage ? { type: "package", id } : { type: "stdlib" },
        );
    }
  }

  // A dist-info without a name and version names no package.
  const pips = env.distInfos.filter(
    (d) => d.name !== undefined && d.version !== undefined,
  );
  const byNormalisedName = new Map<string, string>();
  for (const id of packages.keys())
    byNormalisedName.set(normaliseName(id.slice("conda:".length)), id);
  for (const { record } of records)
    for (const file of record.files ?? []) {
      if (!file.endsWith(".dist-info/METADATA")) continue;
      const distInfo =
        /^[^/]+\/[^/]+\/site-packages\/([^/]+)-[^-/]+\.dist-info\/METADATA$/.exec(
          file,
        );
      const key = distInfo?.[1] === undefined ? "" : normaliseName(distInfo[1]);
      if (key !== "" && !byNormalisedName.has(key))
        byNormalisedName.set(key, `conda:${record.name}`);
    }
  for (const pip of pips)
    if (!pip.editable) byNormalisedName.set(pip.key, `pip:${pip.key}`);
  for (const pip of pips) {
    const name = pip.name as string;
    const version = pip.version as string;
    const id = `pip:${pip.key}`;
    for (const module of pip.modules) {
      if (modules.has(module)) continue;
      modules.set(
        module,
        pip.editable
          ? { type: "editable", name, version, source: pip.editable }
          : { type: "package", id },
      );
    }
    if (pip.editable) continue;
    packages.set(id, {
      id,
      manager: "pip",
      name,
      version,
      path: pip.path,
      integrity: pip.integrity,
      integritySource: pip.integrity ? "record" : "none",
      dependencies: [
        ...new Set(
          pip.requires
            .map((r) => byNormalisedName.get(r))
            .filter((dep): dep is string => dep !== undefined),
        ),
      ].sort(compare),
    });
  }

  const python = packages.get("conda:python") as InstalledPythonPackage;
  const builtins = await builtinsPending;
  let owners: Map<string, string> | undefined;
  const fileOwners = () => {
    if (owners !== undefined) return owners;
    owners = new Map();
    for (const { record } of records)
      for (const file of record.files ?? [])
        if (!owners.has(file)) owners.set(file, `conda:${record.name}`);
    for (const pip of pips)
      if (!pip.editable)
        for (const file of pip.files)
          if (!owners.has(file)) owners.set(file, `pip:${pip.key}`);
    return owners;
  };
  return {
    prefix: env.prefix,
    python,
    pythonMajorMinor,
    platform: env.platform,
    sitePackages,
    packages,
    modules,
    builtins,
    distributions: byNormalisedName,
    fileOwners,
  };
}
