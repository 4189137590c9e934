// Stat stamps of an installed package's files: change when any file is added, removed or edited.

import { createHash } from "node:crypto";
import { lstatSync, readdirSync, statSync, type Stats } from "node:fs";
import { sep } from "node:path";
import { isNotFound } from "../../core/light.js";

/** One walk of a package directory (nested `node_modules` excluded); reads no file contents. */
export interface PackageTreeWalk {
  /** {@link packageTreeStamp}'s stamp. */
  stamp: string;
  /**
   * A stricter stamp: every entry's and the directory's own path, mode, size, inode and mtime to
   * the millisecond. Checked again by {@link recheckTreeStamp} from `paths` alone. Not ctime, nor
   * below the millisecond (what a JavaScript Date holds): bytes and times put back (a restore)
   * are the same tree, as for {@link packageTreeStamp}, and setting atimes or linking a file
   * elsewhere must not look like an edit.
   */
  strict: string;
  /** The relative paths walked, the directory itself (`.`) first, in walk order. */
  paths: string[];
}

/**
 * Walks a package directory once for both stamps. Synchronous on purpose: thousands of small
 * stats from the inode cache cost less in one loop than as thread-pool round trips.
 * @throws ENOENT when `dir` is missing; other file-system errors as they are
 */
export function walkPackageTree(dir: string): PackageTreeWalk {
  const hash = createHash("sha256");
  const strict = createHash("sha256");
  const paths = ["."];
  // Lines are hashed in batches and paths joined by hand: per entry, path.join and a hash
  // update cost as much as the lstat itself (thousands of entries on every build).
  let pending = "";
  // The directory itself through a link (a linked package): its entries are the target's.
  let pendingStrict = strictLine(".", statSync(dir));
  const walk = (current: string, rel: string): void => {
    const names = readdirSync(current).sort();
    for (const name of names) {
      if (name === "node_modules") continue;
      const path = `${current}${sep}${name}`;
      const relPath = rel ? `${rel}/${name}` : name;
      const info = lstatSync(path);
      paths.push(relPath);
      pending += `${relPath}\0${info.mode}\0${info.size}\0${Math.floor(info.mtimeMs / 1000)}\0${info.ino}\n`;
      pendingStrict += strictLine(relPath, info);
      if (pending.length >= 65536) {
        hash.update(pending);
        strict.update(pendingStrict);
        pending = pendingStrict = "";
      }
      if (info.isDirectory()) walk(path, relPath);
    }
  };
  walk(dir, "");
  hash.update(pending);
  strict.update(pendingStrict);
  return {
    stamp: `sha256:${hash.digest("hex")}`,
    strict: `sha256:${strict.digest("hex")}`,
    paths,
  };
}

/**
 * `sha256:` over every entry of a package directory (nested `node_modules` excluded): its relative
 * path, mode, size, mtime (whole seconds: tools that copy times round below that) and inode. The
 * cheap witness that a package's tree is still the one it was installed as (an edit changes mtime
 * or size; a replaced file changes the inode), kept apart from ctime, which other links to the
 * same file (a shared store) change.
 */
export async function packageTreeStamp(dir: string): Promise<string> {
  return walkPackageTree(dir).stamp;
}

/**
 * The strict stamp of `dir` from the paths a {@link walkPackageTree} listed, without listing a
 * directory: an entry added, removed or renamed changes its directory's times, an edit its
 * file's. `"missing"` when `dir` is gone; `"changed"` when one of the paths is.
 */
export function recheckTreeStamp(
  dir: string,
  paths: readonly string[],
): string {
  const strict = createHash("sha256");
  let pending = "";
  for (const rel of paths) {
    let info: Stats;
    try {
      info = rel === "." ? statSync(dir) : lstatSync(`${dir}${sep}${rel}`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return rel === "." ? "missing" : "changed";
    }
    pending += strictLine(rel, info);
    if (pending.length >= 65536) {
      strict.update(pending);
      pending = "";
    }
  }
  strict.update(pending);
  return `sha256:${strict.digest("hex")}`;
}

/** Reads a package directory's walk at most once (a build's scan, edit check and fingerprint share it). */
export type PackageTrees = (dir: string) => PackageTreeWalk;

/**
 * A {@link PackageTrees} for one build: each directory walked once, when first asked for. A walk
 * `remembered` from an earlier build is taken instead when its strict stamp still holds (a stat
 * of each of its paths, no directory listed): it covers every entry the walk's own stamp covers.
 */
export function packageTrees(
  remembered?: ReadonlyMap<string, PackageTreeWalk>,
): PackageTrees {
  const walks = new Map<string, PackageTreeWalk>();
  return (dir) => {
    let walk = walks.get(dir);
    if (walk === undefined) {
      const earlier = remembered?.get(dir);
      walk =
        earlier !== undefined &&
        recheckTreeStamp(dir, earlier.paths) === earlier.strict
          ? earlier
          : walkPackageTree(dir);
      walks.set(dir, walk);
    }
    return walk;
  };
}

function strictLine(rel: string, info: Stats): string {
  return `${rel}\0${info.mode}\0${info.size}\0${info.ino}\0${Math.round(info.mtimeMs)}\n`;
}
