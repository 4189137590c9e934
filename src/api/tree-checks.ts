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
  const held: Array<readonly [string, PackageTreeWalk]> = [];
  for (const [dir, walk] of walks) if (walk !== null) held.push([dir, walk]);
  const verdict = native?.checkTrees?.(
    held.map(([dir]) => dir),
    held.map(([, walk]) => walk.lines),
  );
  const indexes = new Map(held.map(([, walk], i) => [walk, i]));
  const isUnchanged = (dir: string, walk: PackageTreeWalk): boolean => {
    const index = indexes.get(walk);
    if (
      verdict === undefined ||
      index === undefined ||
      held[index]?.[0] !== dir
    )
      return isTreeUnchanged(dir, walk.lines, native);
    // Undecided natively: JavaScript answers, or throws the error Node gives.
    return verdict(index) ?? isTreeUnchanged(dir, walk.lines, null);
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
