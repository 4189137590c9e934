// Fits tasks to workers: pure bookkeeping, no I/O. Tasks without resources take a whole worker;
// tasks with resources share workers as far as cores, memory, disk and GPUs allow. Younger tasks
// may pass the oldest one that cannot start (backfilling keeps workers busy), but only so often:
// then it reserves a worker it fits on, so small tasks cannot starve it.

import {
  RESOURCE_KEYS,
  addResources,
  fits,
  type ResourceSpec,
  type Resources,
} from "../core/light.js";
import type { Placement, WorkerInfo } from "./backend.js";

/** What the scheduler needs of a task. */
export interface SchedulableTask {
  id: string;
  /** Empty: the task takes a whole worker. */
  resources: ResourceSpec;
  /**
   * May wait in a worker's own queue (see {@link SchedulerOptions.queuePerCore}) when no worker
   * has room for it now.
   */
  queueable?: boolean | undefined;
  /**
   * The part of a queue place it takes when queued (default 1): a backend that runs several such
   * tasks as one of its own (Work Queue command batches) lets a worker queue more of them.
   */
  queueShare?: number | undefined;
}

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  /**
   * Tasks a worker may hold queued beyond what it runs, per core (default 0). A worker that
   * queues tasks itself (Work Queue's) starts the next one the moment a slot frees, without a
   * round trip to the manager. A task is queued only on a worker whose whole size holds its label,
   * and never behind a larger queued task (the worker starts any queued task that fits, so a
   * larger one could starve behind smaller ones).
   */
  queuePerCore?: number | undefined;
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
  /** Placed on it, waiting in its own queue (in order) until it has room: they hold nothing yet. */
  queued: Array<{ id: string; label: Resources; share: number }>;
  /** The queue places its queued tasks take (the sum of their shares). */
  queuedShare: number;
  /** The free-cores bucket it is filed under (whole free cores). */
  bucket: number;
}

/**
 * The label a task gets on a worker: each given key as given; the keys it leaves out take the
 * same share of the worker as the largest share it asked for (Work Queue's proportional rule),
 * cores rounded up to a whole core; GPUs are never given unasked. A key given as 0 (`gpus: 0`)
 * asks for no share; no key above 0 at all: the whole worker.
 */
export function labelOn(spec: ResourceSpec, worker: Resources): Resources {
  const asked = RESOURCE_KEYS.filter((k) => (spec[k] ?? 0) > 0);
  if (asked.length === 0) return { ...worker, gpus: spec.gpus ?? worker.gpus };
  let share = 0;
  for (const k of asked)
    share = Math.max(
      share,
      worker[k] > 0 ? (spec[k] as number) / worker[k] : Infinity,
    );
  share = Math.min(1, share);
  const pick = (k: (typeof RESOURCE_KEYS)[number]) =>
    spec[k] ?? (k === "gpus" ? 0 : share * worker[k]);
  return {
    cores: Math.max(1, Math.ceil(pick("cores") - 1e-9)),
    memory: pick("memory"),
    disk: pick("disk"),
    gpus: pick("gpus"),
  };
}

/** A queued task with its place in submission order. */
interface Queued extends SchedulableTask {
  seq: number;
}

/**
 * Queued tasks of one shape in submission order: taking the first is O(1) (the scheduler's hot
 * path: an array's splice(0, 1) made a long queue quadratic), removing another one is O(n).
 */
class Fifo {
  #items: Array<Queued | undefined> = [];
  #head = 0;

  constructor(sorted: Queued[] = []) {
    this.#items = sorted;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  get first(): Queued | undefined {
    return this.#items[this.#head];
  }

  push(task: Queued): void {
    this.#items.push(task);
  }

  unshift(task: Queued): void {
    if (this.#head > 0) this.#items[--this.#head] = task;
    else this.#items.unshift(task);
  }

  /** Removes the task with this id; false when it is not here. */
  remove(id: string): boolean {
    if (this.#items[this.#head]?.id === id) {
      this.#items[this.#head++] = undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return true;
    }
    for (let i = this.#head + 1; i < this.#items.length; i++)
      if (this.#items[i]?.id === id) {
        this.#items.splice(i, 1);
        return true;
      }
    return false;
  }

  toArray(): Queued[] {
    return this.#items.slice(this.#head) as Queued[];
  }
}

/** How big a task is, for largest-first: cores, then memory; no spec (a whole worker) is biggest. */
function size(task: Queued): number {
  const { cores, memory } = task.resources;
  if (RESOURCE_KEYS.every((k) => !((task.resources[k] ?? 0) > 0)))
    return Number.MAX_SAFE_INTEGER;
  return (cores ?? 0) * 1e7 + (memory ?? 0);
}

function shapeOf(spec: ResourceSpec): string {
  return `${spec.cores}/${spec.memory}/${spec.disk}/${spec.gpus}`;
}

/** Workers, the tasks waiting for them, and what each running task holds. */
export class Scheduler {
  readonly #workers = new Map<string, WorkerState>();
  readonly #queuePerCore: number;
  /** Workers that may queue one more task. */
  readonly #roomy = new Set<WorkerState>();
  /**
   * Workers by their whole free cores: placing a task that gives its cores looks only at workers
   * with at least that many free, fewest first (best fit), not at every worker.
   */
  readonly #byFree: Array<Set<WorkerState>> = [];
  /**
   * Workers that gained resources (joined, or a task ended there) since the last round, and the
   * shapes no worker could take in the last round: such a shape can only fit on one of these now
   * (the others only lost resources since), so a round looks at them alone for it.
   */
  readonly #dirty = new Set<WorkerState>();
  #blocked = new Set<string>();
  /** Workers held for a waiting task in the last round (others' tasks skipped them). */
  #lastReserved = new Set<string>();
  /** Workers with at least one free core. */
  #withFreeCore = 0;
  #totalCores = 0;
  /** The workers largest first, until one joins or leaves. */
  #sorted: WorkerInfo[] | undefined;
  /** Queued tasks by shape (their resource spec), each in submission order. */
  readonly #buckets = new Map<string, Fifo>();
  readonly #shapeOf = new Map<string, string>();
  readonly #placed = new Map<string, Placement>();
  #seq = 0;
  #queued = 0;

  constructor(options: SchedulerOptions = {}) {
    this.#queuePerCore = options.queuePerCore ?? 0;
  }
  /** Submission order of the tasks started in the current round. */
  readonly #seqOf = new Map<string, number>();
  /**
   * The oldest task that could not start, how many younger ones started since, and the worker it
   * holds once they were too many (kept until it starts, so the hold cannot wander).
   */
  #waiting:
    | {
        task: Queued;
        bypassed: number;
        reserved?: string | undefined;
        /** It went first in the last round and fit nowhere (then only changed workers can take it). */
        stuck?: boolean | undefined;
      }
    | undefined;

  addWorker(info: WorkerInfo): void {
    // The same id again (a worker that reconnected) replaces the old one.
    this.removeWorker(info.id);
    const state: WorkerState = {
      info,
      free: { ...info.resources },
      running: new Set(),
      queued: [],
      queuedShare: 0,
      bucket: -1,
    };
    this.#workers.set(info.id, state);
    this.#fileQueue(state);
    this.#file(state);
    this.#dirty.add(state);
    this.#totalCores += info.resources.cores;
    this.#sorted = undefined;
  }

  /** Removes a worker; returns the ids of the tasks that were running on it. */
  removeWorker(id: string): string[] {
    const state = this.#workers.get(id);
    if (state === undefined) return [];
    this.#workers.delete(id);
    this.#dirty.delete(state);
    this.#roomy.delete(state);
    this.#byFree[state.bucket]?.delete(state);
    if (state.bucket >= 1) this.#withFreeCore--;
    this.#totalCores -= state.info.resources.cores;
    this.#sorted = undefined;
    const held = [...state.running, ...state.queued.map((q) => q.id)];
    for (const task of held) this.#placed.delete(task);
    return held;
  }

  /** Whether a worker may queue one more task. */
  #fileQueue(state: WorkerState): void {
    const room = Math.max(1, state.info.resources.cores) * this.#queuePerCore;
    if (state.queuedShare < room - 1e-9) this.#roomy.add(state);
    else this.#roomy.delete(state);
  }

  /** The workers, largest first (by cores, then memory). */
  workers(): WorkerInfo[] {
    this.#sorted ??= [...this.#workers.values()]
      .map((w) => w.info)
      .sort(
        (a, b) =>
          b.resources.cores - a.resources.cores ||
          b.resources.memory - a.resources.memory,
      );
    return [...this.#sorted];
  }

  /** A worker present now, by id. */
  worker(id: string): WorkerInfo | undefined {
    return this.#workers.get(id)?.info;
  }

  /** The worker a task could ever run on (its whole size), or undefined when none is big enough. */
  anyFit(task: SchedulableTask): WorkerInfo | undefined {
    this.workers();
    return (this.#sorted as WorkerInfo[]).find((w) =>
      fits(labelOn(task.resources, w.resources), w.resources),
    );
  }

  /** Files a worker under its whole free cores (after its free resources changed). */
  #file(state: WorkerState): void {
    const bucket = Math.max(0, Math.floor(state.free.cores + 1e-9));
    if (bucket === state.bucket) return;
    if (state.bucket >= 0) this.#byFree[state.bucket]?.delete(state);
    if (state.bucket >= 1) this.#withFreeCore--;
    let set = this.#byFree[bucket];
    if (set === undefined) {
      for (let i = this.#byFree.length; i <= bucket; i++)
        this.#byFree[i] = new Set();
      set = this.#byFree[bucket] as Set<WorkerState>;
    }
    set.add(state);
    if (bucket >= 1) this.#withFreeCore++;
    state.bucket = bucket;
  }

  /** Queues a task; a retry (`first`) counts as older than everything queued. */
  submit(task: SchedulableTask, first = false): void {
    const shape = shapeOf(task.resources);
    const queued: Queued = { ...task, seq: first ? -++this.#seq : ++this.#seq };
    let bucket = this.#buckets.get(shape);
    if (bucket === undefined) this.#buckets.set(shape, (bucket = new Fifo()));
    if (first) bucket.unshift(queued);
    else bucket.push(queued);
    this.#shapeOf.set(task.id, shape);
    this.#queued++;
  }

  /** Whether a task is queued (submitted, not yet placed nor withdrawn). */
  isQueued(id: string): boolean {
    return this.#shapeOf.has(id);
  }

  /** Drops a queued task; false when it is not queued. */
  withdraw(id: string): boolean {
    const bucket = this.#buckets.get(this.#shapeOf.get(id) ?? "");
    if (bucket === undefined || !bucket.remove(id)) return false;
    this.#dequeued(id);
    return true;
  }

  /**
   * Gives queued tasks other resources (autolabel chose a label for their category), keeping their
   * place in submission order. O(queued tasks), once per label change, not per task.
   */
  reshape(ids: ReadonlySet<string>, resources: ResourceSpec): void {
    const moved: Queued[] = [];
    for (const [shape, bucket] of this.#buckets) {
      const tasks = bucket.toArray();
      if (!tasks.some((t) => ids.has(t.id))) continue;
      const kept: Queued[] = [];
      for (const task of tasks) (ids.has(task.id) ? moved : kept).push(task);
      this.#buckets.set(shape, new Fifo(kept));
    }
    if (moved.length === 0) return;
    if (this.#waiting !== undefined && ids.has(this.#waiting.task.id)) {
      this.#waiting.reserved = undefined;
      this.#waiting.stuck = undefined;
    }
    const shape = shapeOf(resources);
    for (const task of moved) {
      task.resources = resources;
      this.#shapeOf.set(task.id, shape);
    }
    this.#buckets.set(
      shape,
      new Fifo(
        [...(this.#buckets.get(shape)?.toArray() ?? []), ...moved].sort(
          (a, b) => a.seq - b.seq,
        ),
      ),
    );
  }

  get queued(): number {
    return this.#queued;
  }

  /**
   * Places every queued task that can start now and holds its resources until {@link release}.
   * Larger shapes are placed first (as a scheduler with sizes but no durations packs best), each
   * shape in submission order. Younger tasks may start while the oldest waiting one cannot; once
   * {@link BYPASS_PER_CORE} × the pool's cores of them have, it goes first and, if it still
   * cannot start, reserves a worker it fits on (the one running the fewest tasks), which then
   * takes nothing else until it has started; the other workers keep taking younger tasks.
   */
  schedule(): Array<{ taskId: string; placement: Placement }> {
    const started: Array<{ taskId: string; placement: Placement }> = [];
    this.#seqOf.clear();
    const reserved = new Set<string>();
    const cores = this.#totalCores;
    for (const id of this.#lastReserved) {
      const state = this.#workers.get(id);
      if (state !== undefined) this.#dirty.add(state);
    }
    const start = (task: Queued, placement: Placement) => {
      const bucket = this.#buckets.get(this.#shapeOf.get(task.id) ?? "");
      bucket?.remove(task.id);
      this.#dequeued(task.id);
      started.push({ taskId: task.id, placement });
      this.#seqOf.set(task.id, task.seq);
      if (this.#waiting !== undefined && task.seq > this.#waiting.task.seq)
        this.#waiting.bypassed++;
    };
    const waiting = this.#waiting;
    if (waiting !== undefined && waiting.bypassed >= BYPASS_PER_CORE * cores) {
      const placement = this.#place(
        waiting.task,
        reserved,
        waiting.stuck === true ? this.#dirty : undefined,
      );
      if (placement !== undefined) start(waiting.task, placement);
      else {
        waiting.stuck = true;
        if (
          waiting.reserved === undefined ||
          !this.#workers.has(waiting.reserved)
        )
          waiting.reserved = this.#reservationFor(waiting.task);
        if (waiting.reserved !== undefined) reserved.add(waiting.reserved);
      }
    }
    const shapes = [...this.#buckets.entries()]
      .filter(([, bucket]) => bucket.size > 0)
      .sort(
        ([, a], [, b]) => size(b.first as Queued) - size(a.first as Queued),
      );
    const blocked = new Set<string>();
    for (const [shape, bucket] of shapes) {
      const only = this.#blocked.has(shape) ? this.#dirty : undefined;
      // Resources only shrink during a round: once a task of a shape does not fit, the rest of
      // its shape will not either; once no worker has a free core, nothing will.
      while (bucket.size > 0 && this.#anyFreeCore(reserved)) {
        const task = bucket.first as Queued;
        const placement = this.#place(task, reserved, only);
        if (placement === undefined) break;
        start(task, placement);
      }
      if (bucket.size > 0) blocked.add(shape);
    }
    // What no worker has room for now may wait in a worker's own queue.
    if (this.#roomy.size > 0)
      for (const [, bucket] of shapes)
        while (bucket.size > 0 && this.#roomy.size > 0) {
          const task = bucket.first as Queued;
          if (task.queueable !== true) break;
          const placement = this.#queueOn(task, reserved);
          if (placement === undefined) break;
          start(task, placement);
        }
    this.#blocked = blocked;
    this.#dirty.clear();
    this.#lastReserved = reserved;
    // The oldest task still queued is the one younger tasks are counted against.
    let oldest: Queued | undefined;
    for (const [, bucket] of shapes) {
      const head = bucket.first;
      if (head !== undefined && (oldest === undefined || head.seq < oldest.seq))
        oldest = head;
    }
    if (oldest === undefined) this.#waiting = undefined;
    else if (this.#waiting?.task !== oldest) {
      // Younger tasks that started in this round already passed it.
      const seq = oldest.seq;
      const passed = started.filter(
        (s) => (this.#seqOf.get(s.taskId) ?? 0) > seq,
      ).length;
      this.#waiting = { task: oldest, bypassed: passed };
    }
    return started;
  }

  #dequeued(id: string): void {
    this.#shapeOf.delete(id);
    this.#queued--;
    if (this.#waiting?.task.id === id) this.#waiting = undefined;
  }

  /**
   * Frees what a task held (or its place in its worker's queue). The worker then starts what it
   * has queued, in order, each task that fits: held from now on.
   */
  release(taskId: string): void {
    const placement = this.#placed.get(taskId);
    if (placement === undefined) return;
    this.#placed.delete(taskId);
    const state = this.#workers.get(placement.workerId);
    if (state === undefined) return;
    const at = state.queued.findIndex((q) => q.id === taskId);
    if (at >= 0) {
      this.#unqueue(state, at);
      this.#fileQueue(state);
      return;
    }
    state.free = addResources(state.free, placement.label);
    state.running.delete(taskId);
    for (let i = 0; i < state.queued.length;) {
      const next = state.queued[i] as WorkerState["queued"][number];
      if (fits(next.label, state.free)) {
        state.free = addResources(state.free, next.label, -1);
        state.running.add(next.id);
        this.#unqueue(state, i);
      } else i++;
    }
    this.#fileQueue(state);
    this.#file(state);
    this.#dirty.add(state);
  }

  #unqueue(state: WorkerState, at: number): void {
    const [gone] = state.queued.splice(at, 1);
    state.queuedShare =
      state.queued.length === 0 ? 0 : state.queuedShare - (gone?.share ?? 0);
  }

  /** Queues a task on a worker with queue room that could run it (fewest queued first). */
  #queueOn(task: Queued, reserved: Set<string>): Placement | undefined {
    let best: { state: WorkerState; label: Resources } | undefined;
    for (const state of this.#roomy) {
      if (reserved.has(state.info.id)) continue;
      const label = labelOn(task.resources, state.info.resources);
      if (!fits(label, state.info.resources)) continue;
      // Never behind a larger queued task: the worker would start this one first, and again.
      if (!state.queued.every((q) => fits(q.label, label))) continue;
      if (best === undefined || state.queuedShare < best.state.queuedShare)
        best = { state, label };
    }
    if (best === undefined) return undefined;
    const share = task.queueShare ?? 1;
    best.state.queued.push({ id: task.id, label: best.label, share });
    best.state.queuedShare += share;
    this.#fileQueue(best.state);
    const placement = { workerId: best.state.info.id, label: best.label };
    this.#placed.set(task.id, placement);
    return placement;
  }

  #anyFreeCore(reserved: Set<string>): boolean {
    let free = this.#withFreeCore;
    for (const id of reserved)
      if ((this.#workers.get(id)?.bucket ?? 0) >= 1) free--;
    return free > 0;
  }

  /** Places a task by best fit (on one of `only`, when given); undefined when none fits. */
  #place(
    task: SchedulableTask,
    reserved: Set<string>,
    only?: ReadonlySet<WorkerState>,
  ): Placement | undefined {
    const best =
      only !== undefined
        ? this.#bestAmong(task, reserved, only)
        : (task.resources.cores ?? 0) > 0
          ? this.#bestByCores(task, reserved)
          : this.#bestAmong(task, reserved, this.#workers.values());
    if (best === undefined) return undefined;
    best.state.free = addResources(best.state.free, best.label, -1);
    this.#file(best.state);
    best.state.running.add(task.id);
    const placement = { workerId: best.state.info.id, label: best.label };
    this.#placed.set(task.id, placement);
    return placement;
  }

  /**
   * Best fit for a task that gives its cores (its label has those cores on every worker): the
   * first worker that fits, looking from the fewest free cores that can hold it upward.
   */
  #bestByCores(
    task: SchedulableTask,
    reserved: Set<string>,
  ): { state: WorkerState; label: Resources } | undefined {
    const cores = Math.max(
      1,
      Math.ceil((task.resources.cores as number) - 1e-9),
    );
    for (let k = cores; k < this.#byFree.length; k++)
      for (const state of this.#byFree[k] as Set<WorkerState>) {
        if (reserved.has(state.info.id)) continue;
        const label = labelOn(task.resources, state.info.resources);
        if (fits(label, state.free)) return { state, label };
      }
    return undefined;
  }

  /** Best fit by looking at each of `workers` (all of them: a task whose cores depend on the worker). */
  #bestAmong(
    task: SchedulableTask,
    reserved: Set<string>,
    workers: Iterable<WorkerState>,
  ): { state: WorkerState; label: Resources } | undefined {
    // Best fit: the worker left with the fewest free cores, so big holes stay for big tasks.
    let best: { state: WorkerState; label: Resources } | undefined;
    for (const state of workers) {
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
    return best;
  }

  #reservationFor(task: SchedulableTask): string | undefined {
    let best: WorkerState | undefined;
    for (const state of this.#workers.values()) {
      const label = labelOn(task.resources, state.info.resources);
      if (!fits(label, state.info.resources)) continue;
      if (best === undefined || state.running.size < best.running.size)
        best = state;
    }
    return best?.info.id;
  }
}
