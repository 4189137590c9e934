// Plugs status answers and catalog advertisement into a manager: the five status requests (and
// HTTP GETs of them) on the manager's port, and, with a project name, updates to catalog servers.
// The manager knows its workers; the task engine knows the queue and lends a view of it.

import { basename } from "node:path";
import type {
  OnEvent,
  Resources,
  TaskPayload,
  TaskSpec,
} from "../../core/light.js";
import type { Placement } from "../backend.js";
import {
  CatalogAdvertiser,
  DEFAULT_CATALOG,
  checkProject,
  parseCatalog,
} from "./catalog.js";
import type { ManagerSnapshot, StatusHandler } from "./manager-view.js";
import {
  STATUS_REQUESTS,
  parseStatusRequest,
  statusReply,
} from "./status-request.js";
import type {
  CategoryTotals,
  QueueSnapshot,
  QueueTotals,
  TaskReport,
  TaskSnapshot,
  WorkerSnapshot,
} from "./status.js";

/** What the task engine tells status clients about its queue. */
export interface QueueView {
  /** Tasks waiting for a worker, and those placed on one (with `workerId` and their label). */
  tasks(): TaskSnapshot[];
  /** Counters since the start (missing ones are 0). */
  totals?(): Partial<QueueTotals>;
  categoryTotals?(): Record<string, CategoryTotals>;
  /** The most recent finished tasks, for the capacity estimate. */
  reports?(): TaskReport[];
}

/** What the task engine lends a backend: its waiting tasks and its counters. */
export interface EngineQueue {
  /** Tasks waiting for a worker now, oldest first. */
  waiting(): Iterable<{ spec: TaskSpec; submittedAt: number }>;
  counts(): {
    submitted: number;
    done: number;
    failed: number;
    canceled: number;
  };
}

/** The manager side: its request table, its workers, its address. */
export interface StatusSource {
  readonly requests: Map<string, StatusHandler>;
  snapshot(): ManagerSnapshot;
  address(): { host: string; port: number } | undefined;
}

/** Options of a {@link StatusService}. */
export interface StatusServiceOptions {
  /** Advertise under this project name (Parsl's `project_name`) to `catalog`. */
  project?: string | undefined;
  /** `HOST:PORT[,HOST:PORT…]` (default {@link DEFAULT_CATALOG}); only used with `project`. */
  catalog?: string | undefined;
  /** The interval between catalog updates (default 60 s, as the C manager). */
  catalogIntervalMs?: number | undefined;
  onEvent?: OnEvent | undefined;
}

const ZERO_TOTALS: QueueTotals = {
  submitted: 0,
  dispatched: 0,
  done: 0,
  failed: 0,
  cancelled: 0,
  workersJoined: 0,
  workersRemoved: 0,
  workersLost: 0,
  bytesSent: 0,
  bytesReceived: 0,
};

/**
 * Answers `queue_status`, `task_status`, `worker_status`, `wable_status`, `resources_status`
 * and `GET /…` on the manager's port, and advertises the manager to catalog servers when it has
 * a project name. Options are checked at construction (UsageError ENVPACK_USAGE_BAD_CONFIG).
 */
export class StatusService {
  readonly #source: StatusSource;
  readonly #project: string | undefined;
  readonly #advertiser: CatalogAdvertiser | undefined;
  readonly #startedAt = Date.now();
  readonly #joined = new Map<string, number>();
  #queue: QueueView | undefined;
  #engine: EngineQueue | undefined;
  readonly #placed = new Map<string, TaskSnapshot>();

  constructor(source: StatusSource, options: StatusServiceOptions = {}) {
    this.#source = source;
    this.#project =
      options.project === undefined ? undefined : checkProject(options.project);
    if (this.#project !== undefined)
      this.#advertiser = new CatalogAdvertiser({
        catalogs: parseCatalog(options.catalog ?? DEFAULT_CATALOG),
        snapshot: () => this.snapshot(),
        intervalMs: options.catalogIntervalMs,
        onEvent: options.onEvent,
      });
  }

  /** Lends a view of the queue (instead of {@link attach} and {@link running}). */
  setQueue(view: QueueView): void {
    this.#queue = view;
  }

  /** Takes waiting tasks and counters from the task engine. */
  attach(engine: EngineQueue): void {
    this.#engine = engine;
    this.#queue = {
      tasks: () => [...this.#placed.values(), ...this.#waiting()],
      totals: () => {
        const counts = engine.counts();
        return {
          submitted: counts.submitted,
          done: counts.done,
          failed: counts.failed,
          cancelled: counts.canceled,
          dispatched: counts.done + counts.failed + this.#placed.size,
        };
      },
    };
  }

  /**
   * A task placed on a worker: shown as running there, its label counted in use, until the
   * returned function is called (its result is in or it was canceled).
   */
  running(task: TaskSpec, placement: Placement): () => void {
    this.#placed.set(task.id, {
      id: task.id,
      state: "running",
      category: task.category,
      command: describePayload(task.payload),
      resources: placement.label,
      workerId: placement.workerId,
      submittedAt: Date.now(),
      dispatchedAt: Date.now(),
    });
    this.changed();
    return () => {
      if (this.#placed.delete(task.id)) this.changed();
    };
  }

  *#waiting(): Iterable<TaskSnapshot> {
    for (const queued of this.#engine?.waiting() ?? [])
      yield {
        id: queued.spec.id,
        state: "waiting",
        category: queued.spec.category,
        command: describePayload(queued.spec.payload),
        resources: queued.spec.resources,
        submittedAt: queued.submittedAt,
      };
  }

  /** Registers the requests with the manager and, with a project, starts advertising (after the manager listens). */
  async start(): Promise<void> {
    const handler: StatusHandler = (line, client) => {
      const request = parseStatusRequest(line);
      if (request === undefined) client.reply("");
      else client.reply(statusReply(request, this.snapshot()));
    };
    for (const name of [...STATUS_REQUESTS, "GET"])
      this.#source.requests.set(name, handler);
    await this.#advertiser?.start();
  }

  /** The queue changed: advertise soon (coalesced). */
  changed(): void {
    this.#advertiser?.update();
  }

  async stop(): Promise<void> {
    for (const name of [...STATUS_REQUESTS, "GET"])
      this.#source.requests.delete(name);
    await this.#advertiser?.stop();
  }

  /** The manager's workers and the engine's queue as one snapshot. */
  snapshot(): QueueSnapshot {
    const manager = this.#source.snapshot();
    const tasks = this.#queue?.tasks() ?? [];
    const onWorker = new Map<string, TaskSnapshot[]>();
    for (const task of tasks)
      if (task.workerId !== undefined)
        onWorker.set(task.workerId, [
          ...(onWorker.get(task.workerId) ?? []),
          task,
        ]);
    const seen = new Set<string>();
    const workers: WorkerSnapshot[] = manager.workers.map((w) => {
      seen.add(w.id);
      if (!this.#joined.has(w.id)) this.#joined.set(w.id, Date.now());
      const mine = onWorker.get(w.id) ?? [];
      const inUse: Resources = { cores: 0, memory: 0, disk: 0, gpus: 0 };
      for (const task of mine)
        for (const k of ["cores", "memory", "disk", "gpus"] as const)
          inUse[k] += task.resources[k] ?? 0;
      return {
        id: w.id,
        hostname: w.hostname,
        os: w.os,
        arch: w.arch,
        address: w.address,
        resources: w.resources,
        inUse,
        running: mine.map((t) => ({ id: t.id, command: t.command })),
        tasksDone: Math.max(0, w.tasksSent - w.tasksRunning),
        bytesTransferred: w.bytesSent,
        transferMs: 0,
        joinedAt: this.#joined.get(w.id) as number,
      };
    });
    for (const id of this.#joined.keys())
      if (!seen.has(id)) this.#joined.delete(id);
    const address = this.#source.address();
    return {
      ...(this.#project === undefined ? {} : { project: this.#project }),
      host: address?.host ?? manager.host,
      port: address?.port ?? manager.port,
      startedAt: this.#startedAt,
      workers,
      tasks,
      totals: {
        ...ZERO_TOTALS,
        bytesSent: manager.workers.reduce((n, w) => n + w.bytesSent, 0),
        ...this.#queue?.totals?.(),
      },
      categoryTotals: this.#queue?.categoryTotals?.() ?? {},
      reports: this.#queue?.reports?.() ?? [],
    };
  }
}

/** What a task runs, as one line for status clients. */
export function describePayload(payload: TaskPayload): string {
  switch (payload.kind) {
    case "command":
      return "argv" in payload ? payload.argv.join(" ") : payload.shell;
    case "module":
      return `${payload.exportName}() of ${payload.module === "" ? "the bundle's entry" : basename(payload.module)}`;
    case "python":
      return `${payload.functionName}() of ${basename(payload.file)}`;
  }
}
