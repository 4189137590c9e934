// The files a conda record puts in the prefix, as conda-pack reads them: from the package cache's
// paths.json (or legacy files + has_prefix), else from the record.

import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { isNotFound } from "../core/light.js";
import type { CondaMetaRecord } from "./conda-env.js";

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

/**
 * Where a record's package was extracted (`link.source`, else `extracted_package_dir`; its
 * `paths_data` is read only without one): "" when neither is given, or when either field (or
 * `link`) has the wrong type.
 */
function extractedDirOf(json: Record<string, unknown>): string {
  const { link, extracted_package_dir: extracted } = json;
  if (extracted !== undefined && typeof extracted !== "string") return "";
  if (link === undefined) return extracted ?? "";
  if (link === null || typeof link !== "object" || Array.isArray(link))
    return "";
  const source = (link as { source?: unknown }).source;
  if (source !== undefined && typeof source !== "string") return "";
  return source || extracted || "";
}

/**
 * A record's files: from the package cache (`link.source`, else `extracted_package_dir`) as
 * conda-pack reads them — `paths.json` or the legacy `files` + `has_prefix`, noarch python paths
 * mapped into `sitePackages` and `bin` — plus the record's own files the cache doesn't list (byte
 * code, entry points); without a cache, from the record's `paths_data`, else its `files`.
 * `cached` is false when the package cache no longer holds the package.
 */
export async function readManagedFiles(
  entry: CondaMetaRecord,
  sitePackages: string,
): Promise<{ files: ManagedFile[]; cached: boolean }> {
  const { record, json } = entry;
  const cacheDir = extractedDirOf(json);
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
              : p.prefix_placeholder !== undefined || p.path_type === "hardlink"
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
  return { files, cached: fromCache !== undefined };
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
