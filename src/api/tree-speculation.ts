// A rebuild's scan on its remembered package walks taken as still holding, their checks going on
// beside it on the tree-check threads; the scan's writes and events are held until the verdicts
// confirm every walk it used.

import type { EnvpackEvent, OnEvent } from "../core/light.js";
import type { PackageTreeWalk } from "../scan/light.js";
import type { BuildWrites } from "./build-writes.js";

/** What a scan runs with while its walks are taken as holding (see {@link speculateTrees}). */
export interface TreeSpeculation {
  /** True while held: the walk is used and checked at {@link confirm}; after it, the verdict. */
  isUnchanged(dir: string, walk: PackageTreeWalk): boolean;
  /** The build's side writes, registered only once the walks are confirmed (dropped if not). */
  writes: BuildWrites;
  /** The build's events, passed on in order once the walks are confirmed (dropped if not). */
  onEvent: OnEvent;
  /**
   * Waits for the verdict of every walk used so far. When all hold, passes the held writes and
   * events on (in their order) and answers every later question as the verdicts do: true. Else
   * drops them, and whatever the scan registers later: false, and the scan must run again on
   * checked walks.
   */
  confirm(): boolean;
}

/**
 * Takes every remembered walk a scan asks about as holding while the scan runs, so that it never
 * waits for a check the threads have not finished (on two cores, the threads check while the scan
 * parses and resolves). `isUnchanged` gives the real verdicts (checkTreesAhead's). Nothing the scan
 * decides leaves the build until {@link TreeSpeculation.confirm}: a walk that no longer holds costs
 * a second scan, never a wrong record or event.
 */
export function speculateTrees(
  isUnchanged: (dir: string, walk: PackageTreeWalk) => boolean,
  writes: BuildWrites,
  onEvent: OnEvent | undefined,
): TreeSpeculation {
  let state: "held" | "confirmed" | "refuted" = "held";
  const used: Array<[string, PackageTreeWalk]> = [];
  const held: Array<() => void> = [];
  const hold = (step: () => void) => {
    if (state === "held") held.push(step);
    else if (state === "confirmed") step();
  };
  return {
    isUnchanged: (dir, walk) => {
      if (state !== "held") return isUnchanged(dir, walk);
      used.push([dir, walk]);
      return true;
    },
    writes: {
      require: (write) => hold(() => writes.require(write)),
      remember: (what, write) => hold(() => writes.remember(what, write)),
      start: () => hold(() => writes.start()),
      settle: () => writes.settle(),
    },
    onEvent: (event: EnvpackEvent) => hold(() => onEvent?.(event)),
    confirm() {
      if (state !== "held") return state === "confirmed";
      const holds = used.every(([dir, walk]) => isUnchanged(dir, walk));
      state = holds ? "confirmed" : "refuted";
      for (const step of holds ? held.splice(0) : []) step();
      held.length = 0;
      return holds;
    },
  };
}
