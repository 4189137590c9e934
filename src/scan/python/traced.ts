// What a traced run of a Python app touched, in the scanner's terms: packages of the prefix it
// loaded from, and files of the app's project it imported or read.

import { realpath, stat } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { isNotFound } from "../../core/light.js";
import { moduleNameOf } from "../../conda/index.js";
import type { CondaPrefix } from "../conda/index.js";
import type { ScanResult } from "../scan-result.js";

/** A traced run's paths sorted out. */
export interface TracedPython {
  /** Ids of the prefix's packages it loaded a file of (the interpreter left out). */
  packages: Set<string>;
  /** Regular files of the project it imported or read (real paths); a `.pyc` counts as its source. */
  files: Set<string>;
  /** Directories of the project (outside the prefix) the app listed, sorted. */
  listed: string[];
}

/**
 * Sorts the real paths a traced run touched: inside the prefix, by the package whose record or
 * RECORD lists the file (else by its top-level module name under site-packages); inside `project`
 * (and not the prefix), as app files, and the project's directories the app listed. Anything else
 * (system files, temp files, the prefix's directories) is not the app's.
 */
export async function sortTraced(
  trace: { paths: string[]; listed: readonly string[] },
  env: CondaPrefix,
  project: string,
): Promise<TracedPython> {
  const { paths } = trace;
  const prefix = await realpath(env.prefix);
  const owners = env.fileOwners();
  const inProject = (path: string) =>
    (path === project || path.startsWith(project + sep)) &&
    path !== prefix &&
    !path.startsWith(prefix + sep);
  const out: TracedPython = {
    packages: new Set(),
    files: new Set(),
    listed: trace.listed.filter(inProject),
  };
  for (const path of paths) {
    if (path.startsWith(prefix + sep)) {
      const rel = relative(prefix, path).split(sep).join("/");
      let owner = owners.get(rel);
      if (owner === undefined && rel.startsWith(`${env.sitePackages}/`)) {
        const module = moduleNameOf(rel.slice(env.sitePackages.length + 1));
        const found =
          module === undefined ? undefined : env.modules.get(module);
        if (found?.type === "package") owner = found.id;
      }
      if (owner !== undefined && owner !== env.python.id)
        out.packages.add(owner);
      continue;
    }
    if (!path.startsWith(project + sep)) continue;
    const file = path.endsWith(".pyc") ? sourceOfCache(path) : path;
    if (file !== undefined && (await isRegularFile(file))) out.files.add(file);
  }
  return out;
}

/** `dir/__pycache__/name.cpython-311.pyc` → `dir/name.py`; undefined for other `.pyc` paths. */
function sourceOfCache(path: string): string | undefined {
  const dir = dirname(path);
  if (basename(dir) !== "__pycache__") return undefined;
  const name = basename(path).split(".")[0] ?? "";
  return name === "" ? undefined : join(dirname(dir), `${name}.py`);
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/**
 * The other direction of the comparison: the app files (with no reason: imported ones) and the
 * packages (less the interpreter) the scan ships that the traced run never loaded.
 */
export function notLoaded(
  result: ScanResult,
  traced: TracedPython,
  rel: (path: string) => string,
): NonNullable<ScanResult["trace"]> {
  const loaded = new Set([...traced.files].map(rel));
  return {
    notLoaded: {
      files: result.files
        .filter((f) => f.reason === undefined && !loaded.has(f.path))
        .map((f) => f.path),
      packages: result.packages
        .filter(
          (p) =>
            p.reason !== "interpreter" &&
            p.reason !== "traced" &&
            !traced.packages.has(p.id),
        )
        .map((p) => p.id),
    },
  };
}
