// Lists what a Conda prefix holds, as conda-pack sees it: files, symlinks (directory links unfollowed) and empty directories.

import { readdirSync, type Dirent } from "node:fs";
import type { WarnEvent } from "../../src/core/light.js";

/** What a prefix-relative path is. */
export type PrefixItemKind = "file" | "symlink" | "empty-directory";

/**
 * Top-level names conda-pack never packs (package caches, nested environments, locks, conda's
 * own bookkeeping), plus `.envpack`, which envpack writes itself.
 */
const IGNORED_TOP_LEVEL = new Set([
  "pkgs",
  "envs",
  "conda-bld",
  ".conda_lock",
  "users",
  "conda-recipes",
  ".index",
  ".unionfs",
  ".nonadmin",
  "python.app",
  "Launcher.app",
  ".envpack",
]);

/** Options of {@link walkPrefix}. */
export interface WalkPrefixOptions {
  onWarn?: ((warning: WarnEvent) => void) | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Only these prefix-relative directories are descended (the others are not listed): the items
   * in them are the ones a whole walk gives, as long as every ancestor of each is named too.
   */
  within?: ReadonlySet<string> | undefined;
  /**
   * Listings by prefix-relative directory (`""` for the prefix) from an earlier walk of the same
   * prefix, used rather than read again; the directories this walk reads are added.
   */
  listed?: Map<string, Dirent[]> | undefined;
}

/**
 * Every regular file, symlink (a symlinked directory is one entry, not descended) and empty
 * directory under `prefix`, by POSIX path relative to it. Sockets, FIFOs and devices are skipped
 * with a `ENVPACK_WARN_CONDA_SPECIAL_FILE` warning. `prefix` is an absolute, resolved path. Synchronous: a prefix is hundreds of
 * directories, and one readdir after another through the thread pool cost three times as much.
 */
export function walkPrefix(
  prefix: string,
  options: WalkPrefixOptions = {},
): Map<string, PrefixItemKind> {
  const { onWarn, signal, within, listed } = options;
  const items = new Map<string, PrefixItemKind>();
  const visit = (rel: string, isTop: boolean): void => {
    signal?.throwIfAborted();
    let dirents = listed?.get(rel);
    if (dirents === undefined) {
      // Concatenated, not joined: `prefix` is absolute and resolved, `rel` is made of readdir
      // names (never `.` or `..`), so there is nothing to normalise; path.join per directory
      // cost a fifth of the walk.
      dirents = readdirSync(rel === "" ? prefix : `${prefix}/${rel}`, {
        withFileTypes: true,
      });
      listed?.set(rel, dirents);
    }
    let kept = 0;
    for (const dirent of dirents) {
      const name = dirent.name;
      if (
        isTop &&
        (IGNORED_TOP_LEVEL.has(name) ||
          name.endsWith("~") ||
          name.endsWith(".DS_STORE"))
      )
        continue;
      const child = rel === "" ? name : `${rel}/${name}`;
      kept++;
      if (dirent.isSymbolicLink()) items.set(child, "symlink");
      else if (dirent.isFile()) items.set(child, "file");
      else if (dirent.isDirectory()) {
        if (within === undefined || within.has(child)) visit(child, false);
      } else {
        kept--;
        onWarn?.({
          type: "warn",
          code: "ENVPACK_WARN_CONDA_SPECIAL_FILE",
          message: `skipped ${child} in ${prefix}: not a regular file, symlink or directory`,
          data: { prefix, path: child },
        });
      }
    }
    if (kept === 0 && !isTop) items.set(rel, "empty-directory");
  };
  visit("", true);
  return items;
}

/**
 * The source file a byte-code file under `__pycache__` was compiled from, as Python's
 * `importlib.util.source_from_cache` computes it (`a/__pycache__/b.cpython-311.pyc` → `a/b.py`);
 * undefined for anything else.
 */
export function pySourceOf(path: string): string | undefined {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "" : path.slice(0, slash);
  const name = path.slice(slash + 1);
  if (!name.endsWith(".pyc")) return undefined;
  const dirSlash = dir.lastIndexOf("/");
  if (dir.slice(dirSlash + 1) !== "__pycache__") return undefined;
  const dots = name.split(".").length - 1;
  if (dots !== 2 && dots !== 3) return undefined;
  const base = name.slice(0, name.indexOf("."));
  const parent = dirSlash < 0 ? "" : dir.slice(0, dirSlash);
  return parent === "" ? `${base}.py` : `${parent}/${base}.py`;
}
