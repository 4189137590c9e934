// The cache writes a cold build makes beside its packing: the package-edit records it needs and
// the memo stores that only make later builds fast, kept off the path to the bundle.

import type { OnEvent } from "../core/light.js";

/**
 * A build's side writes. Nothing runs until {@link BuildWrites.start} (once the layers' entries
 * are handed to the packers) or {@link BuildWrites.settle}: until then they would compete with
 * the scan and the planning for the thread pool and the event loop. Each write is atomic on its
 * own (temp and rename), so one that is cut short leaves no partial file.
 */
export interface BuildWrites {
  /**
   * A write later builds rely on (a package's as-installed record): its failure fails the build
   * (the first one, unless the build already failed).
   */
  require(write: () => Promise<void>): void;
  /**
   * A memo store write, cheap to lose: run after every required write has settled (a store never
   * gets ahead of the records it rests on); its failure is a `debug` event, not the build's. A
   * write of the same `what` not started yet is replaced: the later one covers what it would.
   */
  remember(what: string, write: () => Promise<void>): void;
  /** Starts the writes on the next turn of the event loop (the caller finishes its turn first). */
  start(): void;
  /**
   * Starts them if not yet, and waits for every write, those registered meanwhile too.
   * @returns the first required write's failure, if one failed
   */
  settle(): Promise<{ error: unknown } | undefined>;
}

/** Opens a build's side writes; `onEvent` receives the memo stores' failures. */
export function openBuildWrites(onEvent: OnEvent | undefined): BuildWrites {
  const required: Array<() => Promise<void>> = [];
  const memos = new Map<string, () => Promise<void>>();
  let running: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;
  const remembered = async (what: string, write: () => Promise<void>) => {
    try {
      await write();
    } catch (error) {
      onEvent?.({
        type: "debug",
        message: `${what} not remembered: ${(error as Error).message}`,
      });
    }
  };
  const run = async (): Promise<void> => {
    // Registered while an earlier round ran: another round, until none is left.
    while (required.length + memos.size > 0) {
      const records = required.splice(0).map((write) =>
        write().catch((error: unknown) => {
          failure ??= { error };
        }),
      );
      await Promise.all(records);
      const round = [...memos];
      memos.clear();
      await Promise.all(round.map(([what, write]) => remembered(what, write)));
    }
  };
  const begin = (): Promise<void> => (running ??= run());
  return {
    require: (write) => void required.push(write),
    remember: (what, write) => void memos.set(what, write),
    start: () => void setImmediate(begin),
    async settle() {
      await begin();
      // Writes registered once the running rounds had ended: rounds of their own.
      while (required.length + memos.size > 0) {
        running = undefined;
        await begin();
      }
      return failure;
    },
  };
}
