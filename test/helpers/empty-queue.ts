// The queue half of a BackendListener for tests that drive a backend without a task engine.

import type { BackendListener } from "../../src/exec/index.js";

export const emptyQueue: Pick<BackendListener, "waiting" | "counts"> = {
  waiting: () => [],
  counts: () => ({
    submitted: 0,
    waiting: 0,
    running: 0,
    done: 0,
    failed: 0,
    canceled: 0,
  }),
};
