// Reads a Conda prefix's metadata once: conda-meta records and unmanaged dist-infos, indexed by top-level module name.

import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { InputError, compare, sha256Hex } from "../../core/index.js";
import { builtinModules } from "./builtin-modules.js";

/** A package installed in the prefix, in the manifest's terms. */
export interface InstalledPythonPackage {
  /** `conda:<name>` or `pip:<normalised name>`. */
  id: string;
  manager: "conda" | "pip";
  name: string;
  version: string;
  build?: string;
  channel?: string;
  /** The conda-meta record or dist-info directory, relative to the prefix. */
  path: string;
  integrity: string | null;
  integritySource: "conda-meta" | "record" | "none";
  /** Ids of installed packages this one declares it needs (conda `depends`, pip `Requires-Dist`). */
  dependencies: string[];
}

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

const condaRecordSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  build: z.string().optional(),
  channel: z.string().optional(),
  subdir: z.string().optional(),
  depends: z.array(z.string()).optional(),
  files: z.array(z.string()).optional(),
  sha256: z.string().optional(),
  md5: z.string().optional(),
});
type CondaRecord = z.infer<typeof condaRecordSchema>;

/** Bounded fan-out for metadata reads. */
const CONCURRENCY = 32;

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

/** PEP 503 name normalisation: lower case, runs of `-_.` become `-`. */
export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/**
 * The top-level module a path under a module directory provides: `x/…` (a package directory),
 * `x.py`, `x.cpython-311-x86_64-linux-gnu.so`, `x.abi3.so`, `x.so`, `x.pyd`. Undefined for
 * metadata, caches and `.pth` files.
 */
export function moduleNameOf(rest: string): string | undefined {
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const dir = rest.slice(0, slash);
    return isIdentifier(dir) && dir !== "__pycache__" ? dir : undefined;
  }
  const dot = rest.indexOf(".");
  if (dot <= 0) return undefined;
  const stem = rest.slice(0, dot);
  const ext = rest.slice(rest.lastIndexOf("."));
  const isModule = rest === `${stem}.py` || ext === ".so" || ext === ".pyd";
  return isModule && isIdentifier(stem) ? stem : undefined;
}

function isIdentifier(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

function condaPackage(
  record: CondaRecord,
  path: string,
  installed: Set<string>,
): InstalledPythonPackage {
  const dependencies = new Set<string>();
  for (const spec of record.depends ?? []) {
    // A match spec's first token is the package name (`python >=3.9`, `libgcc >=13`, `six`).
    const name = spec.trim().split(/\s+/)[0] ?? "";
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
  const text = await readFile(file, "utf8");
  let problem: string;
  try {
    const parsed = condaRecordSchema.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    problem = issue
      ? `${issue.path.join(".") || "(root)"}: ${issue.message}`
      : "not a conda-meta record";
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    problem = error.message;
  }
  throw new InputError(
    "ENVPACK_INPUT_ENV_CORRUPT",
    `corrupt conda-meta record ${file}: ${problem}`,
    {
      hint: "Repair or reinstall the package (`conda install --force-reinstall`), or remove the damaged record.",
      details: { file },
    },
  );
}

interface DistInfo {
  pkg: InstalledPythonPackage;
  modules: string[];
  /** Normalised names from `Requires-Dist` without an `extra` marker. */
  requires: string[];
  /** The source directory of an editable install. */
  editable?: string;
}

async function readDistInfos(
  prefix: string,
  sitePackages: string,
  owned: Set<string>,
): Promise<DistInfo[]> {
  const site = join(prefix, sitePackages);
  let entries: string[];
  try {
    entries = await readdir(site);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const distInfos = entries
    .filter((e) => e.endsWith(".dist-info") && !owned.has(e))
    .sort(compare);
  const read = await mapLimit(distInfos, (dir) =>
    readDistInfo(site, sitePackages, dir),
  );
  return read.filter((d): d is DistInfo => d !== undefined);
}

async function readDistInfo(
  site: string,
  sitePackages: string,
  dir: string,
): Promise<DistInfo | undefined> {
  const base = join(site, dir);
  const [metadata, record, topLevel, directUrl] = await Promise.all(
    ["METADATA", "RECORD", "top_level.txt", "direct_url.json"].map((f) =>
      readOptional(join(base, f)),
    ),
  );
  const headers = parseMetadata(metadata?.toString("utf8") ?? "");
  const fromDir = /^(.+?)-([^-]+)\.dist-info$/.exec(dir);
  const name = headers.get("name")?.[0] ?? fromDir?.[1];
  const version = headers.get("version")?.[0] ?? fromDir?.[2];
  if (name === undefined || version === undefined) return undefined;

  const modules = new Set<string>();
  const pthFiles: string[] = [];
  for (const line of (record?.toString("utf8") ?? "").split("\n")) {
    const path = csvFirstField(line);
    if (path === "" || path.startsWith("../") || path.startsWith("/")) continue;
    if (!path.includes("/") && path.endsWith(".pth")) pthFiles.push(path);
    if (path.startsWith("__editable__")) continue;
    const module = moduleNameOf(path);
    if (module !== undefined) modules.add(module);
  }
  for (const line of (topLevel?.toString("utf8") ?? "").split("\n")) {
    const top = line.trim().split("/")[0] ?? "";
    if (isIdentifier(top)) modules.add(top);
  }

  const editable = await editableSource(
    site,
    dir,
    directUrl,
    pthFiles,
    modules,
  );
  const requires = (headers.get("requires-dist") ?? [])
    .filter((req) => !/\bextra\s*==/.test(req.split(";").slice(1).join(";")))
    .map((req) => normaliseName(/^[A-Za-z0-9._-]+/.exec(req.trim())?.[0] ?? ""))
    .filter((n) => n !== "");
  const integrity = record ? `sha256:${sha256Hex(record)}` : null;
  const pkg: InstalledPythonPackage = {
    id: `pip:${normaliseName(name)}`,
    manager: "pip",
    name,
    version,
    path: `${sitePackages}/${dir}`,
    integrity,
    integritySource: integrity ? "record" : "none",
    dependencies: [],
  };
  return {
    pkg,
    modules: [...modules].sort(compare),
    requires,
    ...(editable === undefined ? {} : { editable }),
  };
}

/**
 * For an editable install (PEP 660 `direct_url.json` with `editable: true`, or a RECORD-listed
 * `__editable__*.pth`), its source directory; the top-level modules found in the `.pth` path
 * entries are added to `modules`. Import hooks in `.pth` files (`import …` lines) are not run.
 */
async function editableSource(
  site: string,
  dir: string,
  directUrl: Buffer | undefined,
  pthFiles: string[],
  modules: Set<string>,
): Promise<string | undefined> {
  let source: string | undefined;
  let isEditable = pthFiles.some((p) => p.startsWith("__editable__"));
  if (directUrl) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(directUrl.toString("utf8"));
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new InputError(
        "ENVPACK_INPUT_ENV_CORRUPT",
        `corrupt ${join(site, dir, "direct_url.json")}: ${error.message}`,
        {
          hint: "Reinstall the package with pip.",
        },
      );
    }
    const info = parsed as { url?: unknown; dir_info?: { editable?: unknown } };
    if (info.dir_info?.editable === true) {
      isEditable = true;
      if (typeof info.url === "string" && info.url.startsWith("file:"))
        source = fileURLToPath(info.url);
    }
  }
  if (!isEditable) return undefined;
  for (const pth of pthFiles) {
    const text = (await readOptional(join(site, pth)))?.toString("utf8") ?? "";
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (
        line === "" ||
        line.startsWith("#") ||
        line.startsWith("import ") ||
        line.startsWith("import\t")
      )
        continue;
      source ??= line;
      let children: string[];
      try {
        children = await readdir(line);
      } catch (error) {
        if (
          ["ENOENT", "ENOTDIR"].includes(
            (error as NodeJS.ErrnoException).code ?? "",
          )
        )
          continue;
        throw error;
      }
      for (const child of children) {
        const module = child.endsWith(".py")
          ? moduleNameOf(child)
          : (await isDirectory(join(line, child)))
            ? moduleNameOf(`${child}/`)
            : undefined;
        if (module !== undefined) modules.add(module);
      }
    }
  }
  return source ?? join(site, dir);
}

/** RFC 822-style METADATA headers (lower-cased names → values), up to the body. */
function parseMetadata(text: string): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  let last: string[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === "") break;
    if ((line.startsWith(" ") || line.startsWith("\t")) && last) {
      last[last.length - 1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const values = headers.get(key) ?? [];
    values.push(line.slice(colon + 1).trim());
    headers.set(key, values);
    last = values;
  }
  return headers;
}

/** The first field of a RECORD (CSV) line, unquoting `"…"`. */
function csvFirstField(line: string): string {
  const trimmed = line.replace(/\r$/, "");
  if (!trimmed.startsWith('"')) return trimmed.split(",")[0] ?? "";
  let out = "";
  for (let i = 1; i < trimmed.length; i++) {
    const c = trimmed[i];
    if (c === '"') {
      if (trimmed[i + 1] === '"') {
        out += '"';
        i++;
      } else {
        return out;
      }
    } else {
      out += c;
    }
  }
  return out;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (
      ["ENOENT", "ENOTDIR"].includes(
        (error as NodeJS.ErrnoException).code ?? "",
      )
    )
      return undefined;
    throw error;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    if (
      ["ENOENT", "ENOTDIR"].includes(
        (error as NodeJS.ErrnoException).code ?? "",
      )
    )
      return false;
    throw error;
  }
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
    if (
      !["ENOENT", "ENOTDIR"].includes(
        (error as NodeJS.ErrnoException).code ?? "",
      )
    )
      throw error;
  }
  throw new InputError(code, message, { hint, details: { path } });
}

/** `Promise.all(items.map(fn))` with at most {@link CONCURRENCY} calls in flight; results keep the input order. */
async function mapLimit<T, R>(
  items: T[],
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker),
  );
  return out;
}
