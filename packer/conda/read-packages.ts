// Reads what the packer needs about a prefix's packages: conda records with their package-cache files, pip dist-infos, editable installs.

import { readFileSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { isAbsolute, join, posix, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import {
  isNotFound,
  InputError,
  compare,
  matchSpecName,
  normaliseName,
  parseDistInfoMetadata,
  readCondaRecord,
  recordLinePath,
  type CondaRecord,
} from "../../src/core/index.js";

/** conda-build's placeholder in packages without `paths.json` whose `has_prefix` line names only the path. */
const LEGACY_PLACEHOLDER = "/opt/anaconda1anaconda2" + "anaconda3";

/** One file a conda package puts in the prefix. */
export interface ManagedFile {
  /** Prefix-relative POSIX path. */
  target: string;
  pathType: "file" | "softlink" | "directory" | "pyc" | "unknown";
  /**
   * Absolute path of the package-cache copy (placeholders unreplaced), for a file with a
   * placeholder when the package is cached: the bundle takes its bytes from there.
   */
  cacheFile?: string;
  placeholder?: string;
  fileMode?: "text" | "binary";
  /** sha256 (hex) of the package's own bytes, when the metadata gives it. */
  sha256?: string;
}

/** A conda-meta record with its files. */
export interface CondaPackage {
  record: CondaRecord;
  /** The whole record JSON. */
  json: Record<string, unknown>;
  /** `conda-meta/<file>.json`. */
  metaPath: string;
  files: ManagedFile[];
  /** False when the package cache no longer holds the package. */
  cached: boolean;
}

/** A pip-installed (unmanaged) distribution. */
export interface PipPackage {
  name: string;
  /** PEP 503-normalised name. */
  key: string;
  version: string;
  /** Normalised names from `Requires-Dist` without an `extra` marker. */
  requires: string[];
  /** Prefix-relative files its RECORD lists, plus the dist-info directory's own files. */
  files: Set<string>;
  distInfo: string;
}

/** One entry of a `paths.json` (`paths_data` in a record): the fields envpack reads. */
interface PathsEntry {
  _path: string;
  path_type?: string;
  prefix_placeholder?: string;
  file_mode?: string;
  sha256?: string;
}

const OPTIONAL_STRINGS = [
  "path_type",
  "prefix_placeholder",
  "file_mode",
  "sha256",
] as const;

/**
 * The `paths` of a parsed `paths.json` (or a record's `paths_data`), or undefined when it is not
 * one. Checked in place rather than through a schema: it lists every file of a package, and a
 * schema's copy of thousands of entries cost more than the rest of reading them.
 */
function pathsEntries(json: unknown): PathsEntry[] | undefined {
  const paths = (json as { paths?: unknown } | null | undefined)?.paths;
  if (!Array.isArray(paths)) return undefined;
  for (const entry of paths as unknown[]) {
    if (entry === null || typeof entry !== "object") return undefined;
    const fields = entry as Record<string, unknown>;
    if (typeof fields["_path"] !== "string") return undefined;
    for (const key of OPTIONAL_STRINGS)
      if (fields[key] !== undefined && typeof fields[key] !== "string")
        return undefined;
  }
  return paths as PathsEntry[];
}

/** A managed file from its paths entry; `cacheFile` only where a placeholder needs the cache's copy. */
function managedFile(
  entry: PathsEntry,
  target: string,
  pathType: ManagedFile["pathType"],
  cacheDir: string | undefined,
): ManagedFile {
  const file: ManagedFile = { target, pathType };
  if (entry.prefix_placeholder !== undefined) {
    file.placeholder = entry.prefix_placeholder;
    file.fileMode = entry.file_mode === "binary" ? "binary" : "text";
    if (cacheDir !== undefined) file.cacheFile = join(cacheDir, entry._path);
  }
  if (entry.sha256 !== undefined) file.sha256 = entry.sha256;
  return file;
}

/** Where a record's package was extracted (its `paths_data` is read only without a cache). */
const recordSourceSchema = z.object({
  link: z.object({ source: z.string().optional() }).optional(),
  extracted_package_dir: z.string().optional(),
});

/**
 * Reads every `conda-meta/*.json` record (sorted by file name) with its file list: from the
 * package cache (`link.source`, else `extracted_package_dir`) as conda-pack does — `paths.json`
 * or the legacy `files` + `has_prefix`, noarch python paths mapped into `sitePackages` and `bin` —
 * plus the record's own files the cache doesn't list (byte code, entry points). An uncached
 * package's files come from its record, and conda-pack's uncached warning is emitted by the caller.
 * Returns them with the prefix's site-packages directory (from the python record).
 * @throws InputError ENVPACK_INPUT_ENV_CORRUPT for an unreadable record, ENVPACK_INPUT_ENV_NO_PYTHON
 */
export async function readCondaPackages(
  prefix: string,
): Promise<{ packages: CondaPackage[]; sitePackages: string }> {
  const metaDir = join(prefix, "conda-meta");
  const names = (await readdir(metaDir))
    .filter((f) => f.endsWith(".json"))
    .sort(compare);
  const records = [];
  for (const name of names)
    records.push({ name, ...(await readCondaRecord(join(metaDir, name))) });
  const sitePackages = sitePackagesOf(
    prefix,
    records.map((r) => r.record),
  );
  const packages: CondaPackage[] = [];
  for (const { name, record, json } of records) {
    const source = recordSourceSchema.safeParse(json);
    const meta = source.success ? source.data : {};
    const cacheDir = meta.link?.source || meta.extracted_package_dir || "";
    const fromCache =
      cacheDir !== "" && isAbsolute(cacheDir)
        ? await readCacheFiles(cacheDir, sitePackages)
        : undefined;
    let files: ManagedFile[];
    let pathsData: PathsEntry[] | undefined;
    if (fromCache) {
      files = fromCache;
      const seen = new Set(files.map((f) => f.target));
      for (const target of record.files ?? []) {
        if (seen.has(target) || target === ".nonadmin") continue;
        files.push({
          target,
          pathType: target.endsWith(".pyc")
            ? "pyc"
            : target.startsWith("bin/")
              ? "unknown"
              : "file",
        });
      }
    } else if ((pathsData = pathsEntries(json["paths_data"])) !== undefined) {
      files = pathsData.map((p) =>
        managedFile(
          p,
          p._path,
          p.path_type === "softlink"
            ? "softlink"
            : p.path_type === "directory"
              ? "directory"
              : p.path_type === "pyc_file"
                ? "pyc"
                : p.prefix_placeholder !== undefined ||
                    p.path_type === "hardlink"
                  ? "file"
                  : "unknown",
          undefined,
        ),
      );
    } else {
      files = (record.files ?? [])
        .filter((t) => t !== ".nonadmin")
        .map((target) => ({ target, pathType: "unknown" as const }));
    }
    packages.push({
      record,
      json,
      metaPath: `conda-meta/${name}`,
      files,
      cached: fromCache !== undefined,
    });
  }
  return { packages, sitePackages };
}

/**
 * `lib/pythonX.Y/site-packages` from the python record; the bundle's interpreter runs the
 * relocation, so it must exist.
 * @throws InputError ENVPACK_INPUT_ENV_NO_PYTHON
 */
function sitePackagesOf(prefix: string, records: CondaRecord[]): string {
  const python = records.find((r) => r.name === "python");
  if (python === undefined)
    throw new InputError(
      "ENVPACK_INPUT_ENV_NO_PYTHON",
      `${prefix} has no python package (no conda-meta record named python)`,
      {
        hint: "Install Python into the environment (`conda install -p PREFIX python`): the bundle's own interpreter relocates it after unpacking.",
        details: { prefix },
      },
    );
  const majorMinor = python.version.split(".").slice(0, 2).join(".");
  return `lib/python${majorMinor}/site-packages`;
}

async function readCacheFiles(
  cacheDir: string,
  sitePackages: string,
): Promise<ManagedFile[] | undefined> {
  const info = join(cacheDir, "info");
  const isNoarchPython = (await noarchType(info)) === "python";
  const mapTarget = (path: string): string => {
    if (!isNoarchPython) return path;
    if (path.startsWith("site-packages/"))
      return `${sitePackages}/${path.slice("site-packages/".length)}`;
    if (path.startsWith("python-scripts/"))
      return `bin/${path.slice("python-scripts/".length)}`;
    return path;
  };
  const pathsJson = await readOptional(join(info, "paths.json"));
  if (pathsJson !== undefined) {
    const paths = pathsEntries(parseJson(pathsJson));
    if (paths === undefined) return undefined;
    return paths.map((p) =>
      managedFile(
        p,
        mapTarget(p._path),
        p.path_type === "softlink"
          ? "softlink"
          : p.path_type === "directory"
            ? "directory"
            : "file",
        cacheDir,
      ),
    );
  }
  const filesList = await readOptional(join(info, "files"));
  if (filesList === undefined) return undefined;
  const hasPrefix = new Map<string, { placeholder: string; mode: string }>();
  const hasPrefixText = (await readOptional(join(info, "has_prefix"))) ?? "";
  for (const line of hasPrefixText.split("\n")) {
    const fields = line
      .trim()
      .split(/\s+/)
      .filter((f) => f !== "")
      .map((f) => f.replace(/^["']|["']$/g, ""));
    if (fields.length === 1)
      hasPrefix.set(fields[0] as string, {
        placeholder: LEGACY_PLACEHOLDER,
        mode: "text",
      });
    else if (fields.length === 3)
      hasPrefix.set(fields[2] as string, {
        placeholder: fields[0] as string,
        mode: fields[1] as string,
      });
  }
  return filesList
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((path) => {
      const prefixed = hasPrefix.get(path);
      return managedFile(
        {
          _path: path,
          prefix_placeholder: prefixed?.placeholder,
          file_mode: prefixed?.mode,
        },
        mapTarget(path),
        "file",
        cacheDir,
      );
    });
}

async function noarchType(info: string): Promise<string | undefined> {
  for (const name of ["link.json", "package_metadata.json"]) {
    const text = await readOptional(join(info, name));
    if (text === undefined) continue;
    const parsed = parseJson(text) as { noarch?: { type?: unknown } } | null;
    const type = parsed?.noarch?.type;
    return typeof type === "string" ? type : undefined;
  }
  return undefined;
}

/**
 * The pip-installed distributions in `sitePackages`: `*.dist-info` directories none of whose
 * files a conda record manages.
 */
export async function readPipPackages(
  prefix: string,
  sitePackages: string,
  managed: ReadonlySet<string>,
): Promise<PipPackage[]> {
  const site = join(prefix, sitePackages);
  const out: PipPackage[] = [];
  for (const dir of (await readdirOptional(site))
    .filter((d) => d.endsWith(".dist-info"))
    .sort(compare)) {
    const distInfo = `${sitePackages}/${dir}`;
    if (managed.has(`${distInfo}/METADATA`)) continue;
    const metadata = parseDistInfoMetadata(
      (await readOptional(join(site, dir, "METADATA"))) ?? "",
    );
    const fromDir = /^(.+?)-([^-]+)\.dist-info$/.exec(dir);
    const name = metadata.get("name")?.[0] ?? fromDir?.[1] ?? dir;
    const version = metadata.get("version")?.[0] ?? fromDir?.[2] ?? "";
    const requires = (metadata.get("requires-dist") ?? [])
      .filter((r) => !/\bextra\s*==/.test(r.split(";").slice(1).join(";")))
      .map((r) => normaliseName(/^[A-Za-z0-9._-]+/.exec(r.trim())?.[0] ?? ""))
      .filter((n) => n !== "");
    const files = new Set<string>();
    for (const line of (
      (await readOptional(join(site, dir, "RECORD"))) ?? ""
    ).split("\n")) {
      const path = recordLinePath(line);
      if (path === "" || path.startsWith("/")) continue;
      const target = posix.normalize(`${sitePackages}/${path}`);
      if (!target.startsWith("../")) files.add(target);
    }
    for (const file of await readdirOptional(join(site, dir)))
      files.add(`${distInfo}/${file}`);
    out.push({
      name,
      key: normaliseName(name),
      version,
      requires,
      files,
      distInfo,
    });
  }
  return out;
}

/**
 * Refuses editable installs, as conda-pack does: a `.pth` line in site-packages naming a
 * directory outside the prefix, or a dist-info whose `direct_url.json` says `editable: true`.
 * @throws InputError ENVPACK_INPUT_ENV_EDITABLE naming the packages (or `.pth` lines)
 */
export async function refuseEditable(
  prefix: string,
  sitePackages: string,
  pips: PipPackage[],
): Promise<void> {
  const site = join(prefix, sitePackages);
  const found = new Map<string, string>();
  for (const pth of (await readdirOptional(site))
    .filter((f) => f.endsWith(".pth"))
    .sort(compare)) {
    for (const raw of ((await readOptional(join(site, pth))) ?? "").split(
      "\n",
    )) {
      const line = raw.trimEnd();
      if (line === "" || line.startsWith("#") || line.startsWith("import"))
        continue;
      const location = resolve(site, line);
      const rel = relative(prefix, location);
      if (rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))) continue;
      const owner = pips.find((p) => p.files.has(`${sitePackages}/${pth}`));
      found.set(owner?.name ?? line, location);
    }
  }
  for (const pip of pips) {
    const text = await readOptional(
      join(prefix, pip.distInfo, "direct_url.json"),
    );
    if (text === undefined) continue;
    const info = parseJson(text) as {
      url?: unknown;
      dir_info?: { editable?: unknown };
    } | null;
    if (info?.dir_info?.editable !== true) continue;
    const url = typeof info.url === "string" ? info.url : "";
    found.set(
      pip.name,
      url.startsWith("file:") ? fileURLToPath(url) : url || pip.distInfo,
    );
  }
  if (found.size === 0) return;
  const names = [...found.keys()].sort(compare);
  throw new InputError(
    "ENVPACK_INPUT_ENV_EDITABLE",
    `cannot pack ${prefix}: editable packages are installed: ${names.join(", ")}`,
    {
      hint: "Install them without -e (`pip install PATH`) or uninstall them (`pip uninstall NAME`); an editable install's source lives outside the environment.",
      details: {
        prefix,
        packages: names.map((name) => ({ name, source: found.get(name) })),
      },
    },
  );
}

/** The conda package names a record's `depends` name. */
export function dependsNames(record: CondaRecord): string[] {
  return (record.depends ?? []).map(matchSpecName).filter((n) => n !== "");
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

/** A small metadata file's text, or undefined when it does not exist (read synchronously: see readCondaRecord). */
async function readOptional(path: string): Promise<string | undefined> {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function readdirOptional(path: string): Promise<string[]> {
  try {
    if (!(await stat(path)).isDirectory()) return [];
    return await readdir(path);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}
