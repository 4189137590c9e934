// Package tree walks a rebuild takes on trust from its fingerprint and checks while it builds:
// the stats of thousands of package entries run in slices between the build's other steps (its
// waits on esbuild and on flushes to disk), and nothing the build records rests on a walk before
// every walk taken on trust is checked.

import {
  isTreeUnchanged,
  packageTrees,
  type PackageTrees,
  type PackageTreeWalk,
} from "../scan/light.js";

/** Thrown by a build that found a walk it took on trust changed: it builds again, checked. */
export class StaleTreesError extends Error {
  constructor(options?: ErrorOptions) {
    super("a package changed since the walk a rebuild took on trust", options);
  }
}

/** How long one slice of checks may hold the event loop. */
const SLICE_MS = 1;

/** The walks of a rebuild, some taken on trust; see {@link trustedTrees}. */
export interface TrustedTrees {
  /** Each directory's walk: the remembered one (on trust until closed), or walked now. */
  trees: PackageTrees;
  /**
   * Takes no more walks on trust (a remembered walk is checked before it is handed out, as
   * packageTrees does); resolves once those taken are checked by the slices: true when every one
   * still holds, false when a package changed since it was walked (or could not be stat'ed: the
   * build again with checked walks then meets the error).
   */
  close(): Promise<boolean>;
  /** {@link close}, checking what is left at once. */
  hold(): Promise<boolean>;
  /** Stops the slices still scheduled (a build that ends without asking). */
  dispose(): void;
}

/**
 * Package trees for a rebuild whose fingerprint missed on a watched path (an app file): a
 * remembered walk is handed out unchecked and checked in slices from then on. The build must
 * know {@link TrustedTrees.hold} true before it records anything resting on them, and build again
 * with checked walks when it is false.
 */
export function trustedTrees(
  remembered: ReadonlyMap<string, PackageTreeWalk>,
): TrustedTrees {
  const checked = packageTrees(remembered);
  const taken = new Map<string, PackageTreeWalk>();
  const unchecked: Array<[dir: string, walk: PackageTreeWalk]> = [];
  let holds = true;
  let closed = false;
  let slice: NodeJS.Immediate | undefined;
  const waiting: Array<(holds: boolean) => void> = [];

  const check = (until: number): void => {
    try {
      while (holds && unchecked.length > 0 && performance.now() < until) {
        const [dir, walk] = unchecked.pop() as [string, PackageTreeWalk];
        holds = isTreeUnchanged(dir, walk.lines);
      }
    } catch {
      // A slice runs outside the build's promises: the build again with checked walks meets the
      // same error (EACCES…) and throws it there.
      holds = false;
    }
    if (!holds || unchecked.length === 0)
      for (const resolve of waiting.splice(0)) resolve(holds);
  };
  const runSlice = (): void => {
    check(performance.now() + SLICE_MS);
    slice = holds && unchecked.length > 0 ? setImmediate(runSlice) : undefined;
  };
  const close = (): Promise<boolean> => {
    closed = true;
    if (!holds || unchecked.length === 0) return Promise.resolve(holds);
    return new Promise((resolve) => waiting.push(resolve));
  };

  return {
    trees: (dir) => {
      const known = taken.get(dir);
      if (known !== undefined) return known;
      const walk = remembered.get(dir);
      if (closed || walk === undefined) return checked(dir);
      taken.set(dir, walk);
      unchecked.push([dir, walk]);
      slice ??= setImmediate(runSlice);
      return walk;
    },
    close,
    hold: () => {
      const verdict = close();
      clearImmediate(slice);
      slice = undefined;
      check(Infinity);
      return verdict;
    },
    dispose: () => {
      clearImmediate(slice);
      slice = undefined;
    },
  };
}
