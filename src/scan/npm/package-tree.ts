// Stat stamps of an installed package's files: change when any file is added, removed or edited.

import { createHash } from "node:crypto";
import {
  constants,
  lstatSync,
  readdirSync,
  statSync,
  type Stats,
} from "node:fs";
import { sep } from "node:path";
import { isNotFound, nativeStat, type NativeStat } from "../../core/light.js";

/** One walk of a package directory (nested `node_modules` excluded); reads no file contents. */
export interface PackageTreeWalk {
  /** {@link packageTreeStamp}'s stamp. */
  stamp: string;
  /**
   * A stricter stamp: `sha256:` over {@link lines}. Not ctime, nor below the millisecond (what a
   * JavaScript Date holds): bytes and times put back (a restore) are the same tree, as for
   * {@link packageTreeStamp}, and setting atimes or linking a file elsewhere must not look like
   * an edit.
   */
  strict: string;
  /**
   * What `strict` hashes: a line per entry, the directory itself (`.`, through a link) first,
   * in walk order: relative path, mode, size, inode and mtime to the millisecond, NUL between
   * fields. {@link isTreeUnchanged} checks it again by one stat per line, listing no directory.
   */
  lines: string;
}

/**
 * Walks a package directory once for both stamps. Synchronous on purpose: thousands of small
 * stats from the inode cache cost less in one loop than as thread-pool round trips. By `native`
 * (see nativeStat) when it can, else (or with `native` null) in JavaScript: the same walk.
 * @throws ENOENT when `dir` is missing; other file-system errors as they are
 */
export function walkPackageTree(
  dir: string,
  native: NativeStat | null = nativeStat(),
): PackageTreeWalk {
  const racyFrom = Date.now() - RACY_MS;
  const walked = native?.walkTree(dir);
  if (walked !== undefined) {
    const [walkedLines, stampText] = walked;
    const lines = voidRacyTimes(walkedLines, racyFrom);
    return {
      stamp: `sha256:${createHash("sha256").update(stampText).digest("hex")}`,
      strict: strictStamp(lines),
      lines,
    };
  }
  const hash = createHash("sha256");
  // Lines are hashed in batches and paths joined by hand: per entry, path.join and a hash
  // update cost as much as the lstat itself (thousands of entries on every build).
  let pending = "";
  // The directory itself through a link (a linked package): its entries are the target's.
  let lines = `.${strictFields(statSync(dir))}`;
  const walk = (current: string, rel: string): void => {
    const names = readdirSync(current).sort();
    for (const name of names) {
      if (name === "node_modules") continue;
      const path = `${current}${sep}${name}`;
      const relPath = rel ? `${rel}/${name}` : name;
      const info = lstatSync(path);
      pending += `${relPath}\0${info.mode}\0${info.size}\0${Math.floor(info.mtimeMs / 1000)}\0${info.ino}\n`;
      lines += relPath + strictFields(info);
      if (pending.length >= 65536) {
        hash.update(pending);
        pending = "";
      }
      if (info.isDirectory()) walk(path, relPath);
    }
  };
  walk(dir, "");
  hash.update(pending);
  lines = voidRacyTimes(lines, racyFrom);
  return {
    stamp: `sha256:${hash.digest("hex")}`,
    strict: strictStamp(lines),
    lines,
  };
}

/**
 * How close to a walk an entry's change may be and still share the file-system clock tick of
 * something the walk did not see: file times come from the kernel's coarse clock (one jiffy,
 * 1–10 ms, behind the clock Date.now() reads), so an entry added or rewritten just after the
 * walk looked can leave the very mtime it recorded.
 */
const RACY_MS = 50;

/**
 * `lines` with the mtime of every entry changed since `from` (ms) replaced by `racy`, which no
 * stat formats: {@link isTreeUnchanged} then reads the walk as changed, and the next build walks
 * again instead of trusting stats that cannot vouch for what followed (git's racily clean
 * entries). Nothing is copied when no entry is that recent.
 */
function voidRacyTimes(lines: string, from: number): string {
  let out: string[] | undefined;
  let kept = 0;
  for (
    let end = lines.indexOf("\n");
    end !== -1;
    end = lines.indexOf("\n", end + 1)
  ) {
    // The last field, read backwards digit by digit (a slice and Number per line cost 1 µs).
    let time = 0;
    let at = end - 1;
    for (let unit = 1; ; at--, unit *= 10) {
      const digit = lines.charCodeAt(at) - 48;
      if (!(digit >= 0 && digit <= 9)) break;
      time += digit * unit;
    }
    // The field follows a NUL, which no path holds: a newline inside a name is no line's end.
    // A negative time (before 1970) stops at its sign, and is never racy either.
    if (time < from || lines.charCodeAt(at) !== 0) continue;
    (out ??= []).push(lines.slice(kept, at + 1), "racy");
    kept = end;
  }
  return out === undefined ? lines : out.join("") + lines.slice(kept);
}

/** {@link PackageTreeWalk.strict} of a walk's lines. */
function strictStamp(lines: string): string {
  return `sha256:${createHash("sha256").update(lines).digest("hex")}`;
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
 * Whether `dir` still has the entries {@link PackageTreeWalk.lines} records, with the same
 * stats: one stat per line, no directory listed and nothing hashed (an entry added, removed or
 * renamed changes its directory's mtime, an edit its file's). The first difference ends the
 * check; a missing path is a difference. By `native` when it can, as {@link walkPackageTree}.
 */
export function isTreeUnchanged(
  dir: string,
  lines: string,
  native: NativeStat | null = nativeStat(),
): boolean {
  const unchanged = native?.checkTree(dir, lines);
  if (unchanged !== undefined) return unchanged;
  let at = 0;
  while (at < lines.length) {
    const fieldsAt = lines.indexOf("\0", at);
    if (fieldsAt === -1) return false;
    const rel = lines.slice(at, fieldsAt);
    let info: Stats;
    try {
      info = rel === "." ? statSync(dir) : lstatSync(`${dir}${sep}${rel}`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return false;
    }
    const fields = strictFields(info);
    if (!lines.startsWith(fields, fieldsAt)) return false;
    at = fieldsAt + fields.length;
  }
  return true;
}

/** What a package directory holds, as {@link treeEntries} lists it. */
export interface TreeEntry {
  /** Relative to the package directory, `/`-separated. */
  path: string;
  type: "file" | "directory" | "symlink" | "other";
}

/**
 * The entries of a walk (the directory itself left out), in walk order, with their kind from the
 * mode recorded: what the package directory held, without listing it again.
 */
export function treeEntries(walk: PackageTreeWalk): TreeEntry[] {
  const { lines } = walk;
  const entries: TreeEntry[] = [];
  // The first line is the directory itself (`.`).
  let at = lines.indexOf("\n") + 1;
  while (at > 0 && at < lines.length) {
    const pathEnd = lines.indexOf("\0", at);
    const modeEnd = lines.indexOf("\0", pathEnd + 1);
    const kind = Number(lines.slice(pathEnd + 1, modeEnd)) & constants.S_IFMT;
    entries.push({
      path: lines.slice(at, pathEnd),
      type:
        kind === constants.S_IFREG
          ? "file"
          : kind === constants.S_IFDIR
            ? "directory"
            : kind === constants.S_IFLNK
              ? "symlink"
              : "other",
    });
    at = lines.indexOf("\n", modeEnd) + 1;
  }
  return entries;
}

/** Reads a package directory's walk at most once (a build's scan, edit check and fingerprint share it). */
export type PackageTrees = (dir: string) => PackageTreeWalk;

/**
 * A {@link PackageTrees} for one build: each directory walked once, when first asked for. A walk
 * `remembered` from an earlier build is taken instead when its lines still hold (a stat of each
 * of its paths, no directory listed): they cover every entry the walk's own stamp covers.
 * `isUnchanged` answers that as {@link isTreeUnchanged} does (e.g. from checks started earlier).
 */
export function packageTrees(
  remembered?: ReadonlyMap<string, PackageTreeWalk>,
  isUnchanged: (dir: string, walk: PackageTreeWalk) => boolean = (dir, walk) =>
    isTreeUnchanged(dir, walk.lines),
): PackageTrees {
  const walks = new Map<string, PackageTreeWalk>();
  return (dir) => {
    let walk = walks.get(dir);
    if (walk === undefined) {
      const earlier = remembered?.get(dir);
      walk =
        earlier !== undefined && isUnchanged(dir, earlier)
          ? earlier
          : walkPackageTree(dir);
      walks.set(dir, walk);
    }
    return walk;
  };
}

/** An entry's line of {@link PackageTreeWalk.lines} after its path (the path holds no NUL). */
function strictFields(info: Stats): string {
  return `\0${info.mode}\0${info.size}\0${info.ino}\0${Math.round(info.mtimeMs)}\n`;
}
