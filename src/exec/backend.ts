// The boundary between the scheduler and where tasks run. The local backend implements it now; a
// Work Queue manager (workers that join and leave, cache files by name) implements it later.

import type { Resources, TaskResult, TaskSpec } from "../core/index.js";

/** A worker as a backend reports it: what it detected (or was declared) to have. */
export interface WorkerInfo {
  id: string;
  resources: Resources;
}

/** How a backend tells the executor about its workers. */
export interface BackendListener {
  workerJoined(worker: WorkerInfo): void;
  /** A worker left: its running tasks resolve with reason "worker-lost". */
  workerLeft(workerId: string): void;
}

/** Where a task runs and with what label (enforced by the backend). */
export interface Placement {
  workerId: string;
  label: Resources;
}

/** A place that runs tasks. */
export interface ExecBackend {
  /** Starts the backend; workers are reported through the listener (possibly before this resolves). */
  start(listener: BackendListener): Promise<void>;
  /**
   * Runs one task on a worker within its label: makes sure the worker holds the task's bundle
   * unpacked (once per worker, shared while in flight), runs it, measures it, kills it when it
   * exceeds its memory or disk label. Resolves with the result for every outcome; rejects only
   * on a bug.
   */
  runTask(
    task: TaskSpec,
    placement: Placement,
    signal: AbortSignal,
  ): Promise<TaskResult>;
  /** Stops every process it started; running tasks resolve with reason "canceled". */
  shutdown(): Promise<void>;
}
