// Fits tasks to workers: pure bookkeeping, no I/O. Tasks without resources take a whole worker;
// tasks with resources share workers as far as cores, memory, disk and GPUs allow. Younger tasks
// may pass the oldest one that cannot start (backfilling keeps workers busy), but only so often:
// then it reserves the worker it will fit on first, so small tasks cannot starve it.

import {
  RESOURCE_KEYS,
  addResources,
  fits,
  type ResourceSpec,
  type Resources,
} from "../core/index.js";
import type { Placement, WorkerInfo } from "./backend.js";

/** What the scheduler needs of a task. */
export interface SchedulableTask {
  id: string;
  /** Empty: the task takes a whole worker. */
  resources: ResourceSpec;
}

/**
 * How many younger tasks may start while the oldest waiting task cannot, per core of the pool,
 * before that task reserves a worker.
 */
export const BYPASS_PER_CORE = 2;

interface WorkerState {
  info: WorkerInfo;
  free: Resources;
  running: Set<string>;
}

/**
 * The label a task gets on a worker: each given key as given; the keys it leaves out take the
 * same share of the worker as the largest share it asked for (Work Queue's proportional rule),
 * cores rounded up to a whole core. No key at all: the whole worker.
 */
export function labelOn(spec: ResourceSpec, worker: Resources): Resources {
  const given = RESOURCE_KEYS.filter((k) => spec[k] !== undefined);
  if (given.length === 0) return { ...worker };
  const share = Math.min(
    1,
    Math.max(
      ...given.map((k) =>
        worker[k] > 0 ? (spec[k] as number) / worker[k] : Infinity,
      ),
    ),
  );
  const pick = (k: (typeof RESOURCE_KEYS)[number]) =>
    spec[k] ?? (k === "gpus" ? 0 : share * worker[k]);
  return {
    cores: Math.max(1, Math.ceil(pick("cores") - 1e-9)),
    memory: pick("memory"),
    disk: pick("disk"),
    gpus: pick("gpus"),
  };
}

function shapeOf(spec: ResourceSpec): string {
  return `${spec.cores}/${spec.memory}/${spec.disk}/${spec.gpus}`;
}

/** Workers, the tasks waiting for them, and what each running task holds. */
export class Scheduler {
  readonly #workers = new Map<string, WorkerState>();
  readonly #queue: SchedulableTask[] = [];
  readonly #placed = new Map<string, Placement>();
  /** The oldest task that could not start, and how many younger ones started since. */
  #waiting: { id: string; bypassed: number } | undefined;

  addWorker(info: WorkerInfo): void {
    this.#workers.set(info.id, {
      info,
      free: { ...info.resources },
      running: new Set(),
    });
  }

  /** Removes a worker; returns the ids of the tasks that were running on it. */
  removeWorker(id: string): string[] {
    const state = this.#workers.get(id);
    this.#workers.delete(id);
    if (state === undefined) return [];
    for (const task of state.running) this.#placed.delete(task);
    return [...state.running];
  }

  /** The workers, largest first (by cores, then memory). */
  workers(): WorkerInfo[] {
    return [...this.#workers.values()]
      .map((w) => w.info)
      .sort(
        (a, b) =>
          b.resources.cores - a.resources.cores ||
          b.resources.memory - a.resources.memory,
      );
  }

  /** The worker a task could ever run on (its whole size), or undefined when none is big enough. */
  anyFit(task: SchedulableTask): WorkerInfo | undefined {
    return this.workers().find((w) =>
      fits(labelOn(task.resources, w.resources), w.resources),
    );
  }

  /** Queues a task (in submission order; a retry goes to the front). */
  submit(task: SchedulableTask, first = false): void {
    if (first) this.#queue.unshift(task);
    else this.#queue.push(task);
  }

  /** Drops a queued task; false when it is not queued. */
  withdraw(id: string): boolean {
    const at = this.#queue.findIndex((t) => t.id === id);
    if (at < 0) return false;
    this.#queue.splice(at, 1);
    if (this.#waiting?.id === id) this.#waiting = undefined;
    return true;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Places every queued task that can start now, oldest first, and holds its resources until
   * {@link release}. Younger tasks may start while the oldest waiting one cannot; once
   * {@link BYPASS_PER_CORE} × the pool's cores of them have, it reserves the worker it will fit on
   * soonest (the one running the fewest tasks), which then takes nothing else.
   */
  schedule(): Array<{ taskId: string; placement: Placement }> {
    const started: Array<{ taskId: string; placement: Placement }> = [];
    const reserved = new Set<string>();
    let cores = 0;
    for (const state of this.#workers.values())
      cores += state.info.resources.cores;
    // Resources only shrink during a round: a shape that did not fit will not fit again, and once
    // no worker has a free core nothing fits (this keeps a round short with a long queue).
    const misfits = new Set<string>();
    for (let i = 0; i < this.#queue.length;) {
      if (!this.#anyFreeCore(reserved)) break;
      const task = this.#queue[i] as SchedulableTask;
      const shape = shapeOf(task.resources);
      if (misfits.has(shape)) {
        i++;
        continue;
      }
      const placement = this.#place(task, reserved);
      if (placement !== undefined) {
        this.#queue.splice(i, 1);
        started.push({ taskId: task.id, placement });
        if (this.#waiting?.id === task.id) this.#waiting = undefined;
        else if (this.#waiting !== undefined) this.#waiting.bypassed++;
        continue;
      }
      misfits.add(shape);
      this.#waiting ??= { id: task.id, bypassed: 0 };
      if (
        this.#waiting.id === task.id &&
        this.#waiting.bypassed >= BYPASS_PER_CORE * cores
      ) {
        const target = this.#reservationFor(task, reserved);
        if (target !== undefined) reserved.add(target);
        // Every worker held for older tasks: nothing younger can start either.
        if (reserved.size >= this.#workers.size) break;
      }
      i++;
    }
    return started;
  }

  /** Frees what a task held. */
  release(taskId: string): void {
    const placement = this.#placed.get(taskId);
    if (placement === undefined) return;
    this.#placed.delete(taskId);
    const state = this.#workers.get(placement.workerId);
    if (state === undefined) return;
    state.free = addResources(state.free, placement.label);
    state.running.delete(taskId);
  }

  #anyFreeCore(reserved: Set<string>): boolean {
    for (const state of this.#workers.values())
      if (!reserved.has(state.info.id) && state.free.cores >= 1) return true;
    return false;
  }

  #place(task: SchedulableTask, reserved: Set<string>): Placement | undefined {
    // Best fit: the worker left with the fewest free cores, so big holes stay for big tasks.
    let best: { state: WorkerState; label: Resources } | undefined;
    for (const state of this.#workers.values()) {
      if (reserved.has(state.info.id)) continue;
      const label = labelOn(task.resources, state.info.resources);
      if (!fits(label, state.free)) continue;
      if (
        best === undefined ||
        state.free.cores - label.cores <
          best.state.free.cores - best.label.cores
      )
        best = { state, label };
    }
    if (best === undefined) return undefined;
    best.state.free = addResources(best.state.free, best.label, -1);
    best.state.running.add(task.id);
    const placement = { workerId: best.state.info.id, label: best.label };
    this.#placed.set(task.id, placement);
    return placement;
  }

  #reservationFor(
    task: SchedulableTask,
    reserved: Set<string>,
  ): string | undefined {
    let best: WorkerState | undefined;
    for (const state of this.#workers.values()) {
      if (reserved.has(state.info.id)) continue;
      const label = labelOn(task.resources, state.info.resources);
      if (!fits(label, state.info.resources)) continue;
      if (best === undefined || state.running.size < best.running.size)
        best = state;
    }
    return best?.info.id;
  }
}
