// The boundary between the task engine and where tasks run: a types-only interface, opened by name
// (open-backend.ts). The local backend runs tasks on this machine; the Work Queue backend drives
// remote workers that join and leave at any time and cache files by name per connection.

import type { Resources, TaskResult, TaskSpec } from "../core/light.js";

/** A worker as a backend reports it: what it detected (or was declared) to have. */
export interface WorkerInfo {
  /** Unique among the workers present now (a worker that reconnects may reuse its id). */
  id: string;
  resources: Resources;
}

/** A task waiting for a worker, as the engine holds it. */
export interface QueuedTask {
  spec: TaskSpec;
  /** ms since the epoch. */
  submittedAt: number;
}

/** The engine's counters since it started (every attempt's end counted once). */
export interface TaskCounts {
  submitted: number;
  waiting: number;
  running: number;
  done: number;
  failed: number;
  canceled: number;
}

/**
 * How a backend talks to the task engine: workers joining and leaving (at any time, before or
 * after start resolves, as often as they like), and what the engine holds (for status answers
 * and for factories that size a pool to the demand).
 */
export interface BackendListener {
  workerJoined(worker: WorkerInfo): void;
  /**
   * A worker left: the engine stops placing tasks on it at once. Its running tasks must still
   * resolve, with reason "worker-lost": the engine queues them again without counting a failed
   * attempt.
   */
  workerLeft(workerId: string): void;
  /** Tasks waiting for a worker now, oldest first. */
  waiting(): Iterable<QueuedTask>;
  counts(): TaskCounts;
}

/** Where a task runs and with what label (enforced by the backend). */
export interface Placement {
  workerId: string;
  label: Resources;
}

/** Where a backend listens for workers. */
export interface BackendAddress {
  host: string;
  port: number;
}

/**
 * A place that runs tasks. A worker keeps what it was sent by name (a bundle's digest, a runtime
 * file) for as long as it stays: a backend sends each once per worker (per connection) and
 * unpacks a bundle once per worker, not once per task.
 */
export interface ExecBackend {
  /**
   * True when no worker joins after start (local): a task no worker fits fails at once. Otherwise
   * (a manager) such a task waits for a worker that fits, as tasks wait for the first worker.
   */
  readonly fixedPool?: boolean | undefined;
  /**
   * Tasks a worker may hold queued beyond what it runs, per core (default 0): a worker that starts
   * its next queued task itself when a slot frees saves a round trip per task. A task placed so
   * waits on its worker; if the worker leaves, it resolves "worker-lost" like a running one.
   */
  readonly queuePerCore?: number | undefined;
  /** Whether a task may wait in a worker's queue (default: all, when queuePerCore > 0). */
  mayQueue?(task: TaskSpec): boolean;
  /**
   * The part of a worker's queue place a task takes (default 1): below 1 for tasks the backend
   * runs several to one of its own tasks, so that a worker holds enough of them to fill those.
   */
  queueShare?(task: TaskSpec): number;
  /**
   * Starts the backend (for a manager: listens); workers are reported through the listener,
   * possibly before this resolves and at any time after it.
   */
  start(listener: BackendListener): Promise<void>;
  /** Where workers connect, once started; none for a backend without a port (local). */
  address?(): BackendAddress | undefined;
  /**
   * Runs one task on a worker within its label: makes sure the worker holds the task's bundle
   * unpacked (once per worker, shared while in flight), runs it, measures it, kills it when it
   * exceeds its memory or disk label. Resolves with the result for every outcome ("worker-lost"
   * when its worker left under it, "canceled" when `signal` aborted); rejects only on a bug.
   */
  runTask(
    task: TaskSpec,
    placement: Placement,
    signal: AbortSignal,
  ): Promise<TaskResult>;
  /** Stops every process it started; running tasks resolve with reason "canceled". */
  shutdown(): Promise<void>;
}
