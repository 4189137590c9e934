// Remembered package tree walks checked again ahead of need: on the native addon's threads while
// the build reads its fingerprint and scans the app, each verdict taken when it is asked for.

import { nativeStat, pathStamps, type NativeStat } from "../core/light.js";
import { isTreeUnchanged, type PackageTreeWalk } from "../scan/light.js";

/** The verdicts of remembered walks, checked ahead (see {@link checkTreesAhead}). */
export interface TreeChecks {
  /** {@link isTreeUnchanged} of `dir` and `walk`: the check started ahead when it covers them. */
  isUnchanged(dir: string, walk: PackageTreeWalk): boolean;
  /**
   * Whether every walk still holds (and every directory recorded missing still is); the first
   * change ends the wait, while the other walks go on being checked for the scan.
   */
  areAllUnchanged(): boolean;
}

/**
 * Starts checking `walks` (directories with their walks, `null`: missing when walked) on the
 * addon's threads. Without the addon (or one built before its `checkTrees`), each verdict is
 * {@link isTreeUnchanged}'s, computed when asked for.
 */
export function checkTreesAhead(
  walks: ReadonlyArray<readonly [dir: string, walk: PackageTreeWalk | null]>,
  native: NativeStat | null = nativeStat(),
): TreeChecks {
  // Each walk is checked in parts of its lines: a big package (one holds most of the files of
  // an app's packages) is then shared by the threads and the caller rather than left to one.
  const dirs: string[] = [];
  const parts: string[] = [];
  const partsOf = new Map<
    PackageTreeWalk,
    { dir: string; first: number; end: number }
  >();
  for (const [dir, walk] of walks) {
    if (walk === null || partsOf.has(walk)) continue;
    const first = parts.length;
    for (const part of linesInParts(walk.lines)) {
      dirs.push(dir);
      parts.push(part);
    }
    partsOf.set(walk, { dir, first, end: parts.length });
  }
  const verdict = native?.checkTrees?.(dirs, parts);
  const isUnchanged = (dir: string, walk: PackageTreeWalk): boolean => {
    const held = partsOf.get(walk);
    if (verdict === undefined || held === undefined || held.dir !== dir)
      return isTreeUnchanged(dir, walk.lines, native);
    for (let i = held.first; i < held.end; i++) {
      const unchanged = verdict(i);
      if (unchanged === true) continue;
      // A change, or undecided natively: the whole walk answers as isTreeUnchanged does (the
      // error Node gives included), so a part cut inside a name (one holding a newline) can
      // only cost this check.
      return unchanged === undefined
        ? isTreeUnchanged(dir, walk.lines, null)
        : isTreeUnchanged(dir, walk.lines, native);
    }
    return true;
  };
  return {
    isUnchanged,
    areAllUnchanged: () => {
      for (const [dir, walk] of walks)
        if (
          walk === null
            ? pathStamps([dir], native)[0] !== "missing"
            : !isUnchanged(dir, walk)
        )
          return false;
      return true;
    },
  };
}

/** Characters of a walk's lines checked as one part (a few hundred paths). */
const PART = 16 * 1024;

/** A walk's lines in parts of about {@link PART} characters, each cut after a line's newline. */
function linesInParts(lines: string): string[] {
  const parts: string[] = [];
  let from = 0;
  while (lines.length - from > PART) {
    const cut = lines.indexOf("\n", from + PART);
    if (cut === -1) break;
    parts.push(lines.slice(from, cut + 1));
    from = cut + 1;
  }
  if (from < lines.length || parts.length === 0) parts.push(lines.slice(from));
  return parts;
}
