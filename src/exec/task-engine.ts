// The task engine: queues tasks, places them on a backend's workers (the scheduler), and decides
// what happens after each attempt — autolabel feedback, the over-label retry on a whole worker,
// retries after a crash, a lost worker's tasks queued again, cancel — with a `task:state` event
// for every change. It knows no processes and no sockets: the backend runs what it places.

import {
  TaskError,
  type OnEvent,
  type ResourceSpec,
  type Resources,
  type TaskPayload,
  type TaskResult,
  type TaskSpec,
} from "../core/light.js";
import type {
  BackendAddress,
  ExecBackend,
  QueuedTask,
  TaskCounts,
  WorkerInfo,
} from "./backend.js";
import {
  Categories,
  type AutolabelMode,
  type CategorySummary,
} from "./categories.js";
import { Scheduler } from "./scheduler.js";

/** Options of {@link TaskEngine}. */
export interface TaskEngineOptions {
  backend: ExecBackend;
  /** Measure tasks and choose their labels (Work Queue's autolabel). */
  autolabel?: boolean | undefined;
  /** Tasks measured on a whole worker before a category gets a label (default 1). */
  autolabelWindow?: number | undefined;
  autolabelMode?: AutolabelMode | undefined;
  /** Runs again after a crash (default 0). Over-label retries and lost workers do not count. */
  maxRetries?: number | undefined;
  onEvent?: OnEvent | undefined;
  /** The clock for `submittedAt` (default Date.now). */
  now?: (() => number) | undefined;
}

/** A task as submitted to the engine. */
export interface EngineTask {
  /** Its name in messages (the app's). */
  name: string;
  category: string;
  payload: TaskPayload;
  /** Declared resources; empty: a whole worker (or, under autolabel, its category's label). */
  resources: ResourceSpec;
  bundle?: TaskSpec["bundle"];
  env?: TaskSpec["env"];
}

interface Pending {
  spec: TaskSpec;
  name: string;
  declared: ResourceSpec;
  submittedAt: number;
  /** Over-label retries on a whole worker. */
  enlarged: boolean;
  retries: number;
  /** Queued under its category's label (reshaped when the label changes). */
  follows: boolean;
  controller?: AbortController | undefined;
  resolve(result: TaskResult): void;
  reject(error: unknown): void;
}

/**
 * Runs tasks on a backend. `submit` resolves with the result of a task's last attempt (ok, or a
 * failure the engine does not retry); it rejects only when there is no result: no worker could
 * ever hold the task, or it was canceled before it started.
 */
export class TaskEngine {
  readonly #options: TaskEngineOptions;
  readonly #backend: ExecBackend;
  readonly #scheduler: Scheduler;
  readonly #categories: Categories;
  readonly #pending = new Map<string, Pending>();
  /** Per category, the queued tasks whose resources are the category's label (autolabel). */
  readonly #labelled = new Map<string, Set<string>>();
  readonly #now: () => number;
  readonly #counts: TaskCounts = {
    submitted: 0,
    waiting: 0,
    running: 0,
    done: 0,
    failed: 0,
    canceled: 0,
  };
  #next = 0;
  #canceled = false;
  #started: Promise<void> | undefined;
  /** Each resource's largest amount on any worker: labels never ask for more. */
  #largest: Resources = { cores: 0, memory: 0, disk: 0, gpus: 0 };

  constructor(options: TaskEngineOptions) {
    this.#options = options;
    this.#backend = options.backend;
    this.#scheduler = new Scheduler({
      queuePerCore: options.backend.queuePerCore,
    });
    this.#now = options.now ?? Date.now;
    this.#categories = new Categories({
      window: options.autolabelWindow ?? 1,
      mode: options.autolabelMode ?? "max",
    });
  }

  /** Starts the backend (once); workers may join before and after this resolves. */
  start(): Promise<void> {
    this.#started ??= this.#backend.start({
      workerJoined: (info) => this.#joined(info),
      workerLeft: (id) => this.#left(id),
      waiting: () => this.#waiting(),
      counts: () => ({ ...this.#counts }),
    });
    return this.#started;
  }

  /** Where workers connect (after start), when the backend listens. */
  address(): BackendAddress | undefined {
    return this.#backend.address?.();
  }

  /** The scheduler's workers, largest first. */
  workers(): WorkerInfo[] {
    return this.#scheduler.workers();
  }

  /** Per category: samples, the label in use and why, peaks, over-label retries. */
  summary(): CategorySummary[] {
    return this.#categories.summary();
  }

  counts(): TaskCounts {
    return { ...this.#counts };
  }

  /**
   * Queues a task. Resolves with its last attempt's result.
   * @throws TaskError ENVPACK_TASK_TOO_LARGE (no worker of a fixed pool could ever hold it),
   *   ENVPACK_TASK_CANCELED (canceled while queued)
   */
  submit(task: EngineTask): Promise<TaskResult> {
    const id = `t${++this.#next}`;
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        spec: {
          id,
          category: task.category,
          payload: task.payload,
          resources: {},
          bundle: task.bundle,
          env: task.env,
          attempt: 0,
        },
        name: task.name,
        declared: task.resources,
        submittedAt: this.#now(),
        enlarged: false,
        retries: 0,
        follows: false,
        resolve,
        reject,
      };
      this.#counts.submitted++;
      this.#pending.set(id, pending);
      this.#enqueue(pending);
    });
  }

  /**
   * Cancels one task (by id), or every queued and running task and every retry to come. A queued
   * task rejects with ENVPACK_TASK_CANCELED; a running one is aborted on its worker and resolves
   * with its "canceled" result.
   */
  cancel(id?: string): void {
    if (id === undefined) this.#canceled = true;
    const targets =
      id === undefined
        ? [...this.#pending.values()]
        : [this.#pending.get(id)].filter((p) => p !== undefined);
    for (const pending of targets) {
      if (this.#scheduler.withdraw(pending.spec.id)) {
        this.#counts.waiting--;
        this.#counts.canceled++;
        this.#unlabel(pending);
        this.#pending.delete(pending.spec.id);
        pending.reject(
          taskError(pending.name, pending.spec.id, "canceled", undefined),
        );
      } else if (pending.controller !== undefined) {
        pending.controller.abort();
      }
    }
  }

  /** Stops the backend (after start, if it was started). */
  async close(): Promise<void> {
    await this.#started?.catch(() => {});
    await this.#backend.shutdown();
  }

  /** Chooses the task's resources for this attempt and queues it. */
  #enqueue(pending: Pending): void {
    const { spec } = pending;
    pending.follows =
      this.#options.autolabel === true &&
      !pending.enlarged &&
      Object.keys(pending.declared).length === 0;
    spec.resources = pending.enlarged
      ? {}
      : pending.follows
        ? this.#labelOf(spec.category)
        : pending.declared;
    const task = {
      id: spec.id,
      resources: spec.resources,
      queueable: this.#backend.mayQueue?.(spec) ?? true,
      queueShare: this.#backend.queueShare?.(spec),
    };
    // A pool that may grow keeps a task no worker fits (none may have joined yet).
    if (
      this.#backend.fixedPool === true &&
      this.#scheduler.anyFit(task) === undefined
    ) {
      const largest = this.#scheduler.workers()[0];
      this.#pending.delete(spec.id);
      this.#counts.failed++;
      pending.reject(
        new TaskError(
          "ENVPACK_TASK_TOO_LARGE",
          `${pending.name} asks for ${JSON.stringify(spec.resources)}, more than any worker has (largest: ${largest?.id ?? "none"} with ${JSON.stringify(largest?.resources ?? {})})`,
          {
            hint: "Ask for less, or add a bigger worker.",
            details: { resources: spec.resources, largest: largest?.resources },
          },
        ),
      );
      return;
    }
    this.#options.onEvent?.({
      type: "task:state",
      id: spec.id,
      category: spec.category,
      state: spec.attempt === 0 ? "queued" : "retry",
      ...(spec.attempt === 0 ? { app: pending.name } : {}),
    });
    this.#scheduler.submit(task, spec.attempt > 0);
    this.#counts.waiting++;
    if (pending.follows) {
      let ids = this.#labelled.get(spec.category);
      if (ids === undefined)
        this.#labelled.set(spec.category, (ids = new Set()));
      ids.add(spec.id);
    }
    this.#pump();
  }

  /** The resources a category's label gives a task: a whole worker while measuring, or when no worker holds it. */
  #labelOf(category: string): ResourceSpec {
    const label = this.#categories.labelFor(category);
    if (label === null) return {};
    return this.#scheduler.anyFit({ id: "", resources: label }) === undefined
      ? {}
      : label;
  }

  #unlabel(pending: Pending): void {
    if (pending.follows)
      this.#labelled.get(pending.spec.category)?.delete(pending.spec.id);
  }

  #pump(): void {
    for (const { taskId, placement } of this.#scheduler.schedule()) {
      this.#counts.waiting--;
      const pending = this.#pending.get(taskId);
      if (pending === undefined) {
        this.#scheduler.release(taskId);
        continue;
      }
      this.#unlabel(pending);
      const controller = new AbortController();
      pending.controller = controller;
      this.#counts.running++;
      this.#options.onEvent?.({
        type: "task:state",
        id: taskId,
        category: pending.spec.category,
        state: "running",
        workerId: placement.workerId,
        label: placement.label,
      });
      this.#backend.runTask(pending.spec, placement, controller.signal).then(
        (result) => this.#finished(pending, result),
        (error: unknown) => {
          pending.controller = undefined;
          this.#counts.running--;
          this.#counts.failed++;
          this.#scheduler.release(taskId);
          this.#pending.delete(taskId);
          pending.reject(error);
          this.#pump();
        },
      );
    }
  }

  #finished(pending: Pending, result: TaskResult): void {
    const { spec } = pending;
    pending.controller = undefined;
    this.#counts.running--;
    this.#scheduler.release(spec.id);
    const over = result.reason === "over-resources";
    if (this.#options.autolabel && (result.ok || over))
      this.#learn(spec, result);
    this.#options.onEvent?.({
      type: "task:state",
      id: spec.id,
      category: spec.category,
      state: result.ok ? "done" : "failed",
      workerId: result.workerId,
      label: result.label,
      result,
    });
    if (
      !result.ok &&
      !this.#canceled &&
      (this.#enlarges(pending, result) ||
        result.reason === "worker-lost" ||
        this.#retries(pending, result))
    ) {
      spec.attempt++;
      this.#enqueue(pending);
      return;
    }
    if (result.ok) this.#counts.done++;
    else if (result.reason === "canceled") this.#counts.canceled++;
    else this.#counts.failed++;
    this.#pending.delete(spec.id);
    pending.resolve(result);
    this.#pump();
  }

  /** Autolabel: the measurement feeds the category; a new label reshapes its queued tasks. */
  #learn(spec: TaskSpec, result: TaskResult): void {
    const changed = this.#categories.record(
      spec.category,
      result.usage,
      this.#largest,
      result.reason === "over-resources",
    );
    if (changed === undefined) return;
    this.#options.onEvent?.({ type: "label:chosen", ...changed });
    // Tasks queued while the category was measuring wait with the new label, not a whole worker.
    const ids = this.#labelled.get(spec.category);
    if (ids === undefined || ids.size === 0) return;
    const resources = this.#labelOf(spec.category);
    this.#scheduler.reshape(ids, resources);
    for (const id of ids) {
      const queued = this.#pending.get(id);
      if (queued !== undefined) queued.spec.resources = resources;
    }
  }

  /** Work Queue's rule: a task over its label (under autolabel) runs again on a whole worker. */
  #enlarges(pending: Pending, result: TaskResult): boolean {
    if (
      result.reason !== "over-resources" ||
      !this.#options.autolabel ||
      pending.enlarged ||
      isWhole(result.label, this.#workerSize(result.workerId))
    )
      return false;
    pending.enlarged = true;
    return true;
  }

  /** A crash, retried up to maxRetries. */
  #retries(pending: Pending, result: TaskResult): boolean {
    if (
      !crashed(pending.spec.payload, result) ||
      pending.retries >= (this.#options.maxRetries ?? 0)
    )
      return false;
    pending.retries++;
    return true;
  }

  #workerSize(id: string): Resources | undefined {
    return this.#scheduler.worker(id)?.resources;
  }

  #joined(info: WorkerInfo): void {
    this.#scheduler.addWorker(info);
    const largest = { ...this.#largest };
    for (const key of ["cores", "memory", "disk", "gpus"] as const)
      largest[key] = Math.max(largest[key], info.resources[key]);
    this.#largest = largest;
    this.#options.onEvent?.({
      type: "worker:joined",
      workerId: info.id,
      resources: { ...info.resources },
    });
    this.#pump();
  }

  /** A worker left: nothing more is placed on it; the backend resolves its tasks "worker-lost". */
  #left(id: string): void {
    this.#scheduler.removeWorker(id);
    this.#options.onEvent?.({ type: "worker:left", workerId: id });
  }

  *#waiting(): Iterable<QueuedTask> {
    const queued: Pending[] = [];
    for (const pending of this.#pending.values())
      if (
        pending.controller === undefined &&
        this.#scheduler.isQueued(pending.spec.id)
      )
        queued.push(pending);
    queued.sort((a, b) => a.submittedAt - b.submittedAt);
    for (const p of queued) yield { spec: p.spec, submittedAt: p.submittedAt };
  }
}

/** The error a failed task rejects with: its code from the reason, its last result attached. */
export function taskError(
  name: string,
  id: string,
  reason: TaskResult["reason"],
  result: TaskResult | undefined,
  extra: { hint?: string | undefined; details?: Record<string, unknown> } = {},
): TaskError {
  const code =
    reason === "over-resources"
      ? "ENVPACK_TASK_OVER_RESOURCES"
      : reason === "canceled"
        ? "ENVPACK_TASK_CANCELED"
        : "ENVPACK_TASK_FAILED";
  const what =
    result?.error !== undefined
      ? `${result.error.name}: ${result.error.message}`
      : reason;
  return new TaskError(code, `${name} (${id}) failed: ${what}`, {
    hint:
      extra.hint ??
      (reason === "over-resources"
        ? "Give the app more resources (app.with({ resources })) or turn on autolabel."
        : undefined),
    details: { reason, stderrTail: result?.stderrTail, ...extra.details },
    result,
  });
}

/**
 * A crash (retried up to maxRetries): the process died under the task — killed by a signal, or a
 * module/Python runtime that exited. A command's non-zero exit and an app's exception are the
 * app's own answer, not retried. (A lost worker is not a crash: its tasks are always queued again.)
 */
function crashed(payload: TaskPayload, result: TaskResult): boolean {
  return (
    result.reason === "signal" ||
    (result.reason === "exit" &&
      payload.kind !== "command" &&
      result.exitCode !== undefined)
  );
}

function isWhole(label: Resources, worker: Resources | undefined): boolean {
  return (
    worker !== undefined &&
    label.cores >= worker.cores &&
    label.memory >= worker.memory
  );
}
