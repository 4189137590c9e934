// The manager's state as Work Queue's tools read it: the JSON objects the C manager (cctools 9.9,
// `work_queue.c` queue_to_jx, task_to_jx, worker_to_jx, category_to_jx) sends for its status
// requests and to the catalog, built from a snapshot of the queue and its workers.

import { userInfo } from "node:os";
import type { ResourceSpec, Resources } from "../../core/light.js";

/** A connected worker as the manager sees it. */
export interface WorkerSnapshot {
  /** Its `worker-id` from the greeting. */
  id: string;
  /** Host name, OS and architecture from its greeting (`workqueue 9 HOST OS ARCH VERSION`). */
  hostname: string;
  os: string;
  arch: string;
  /** Where it connected from, `ip:port`. */
  address: string;
  /** What it reported (totals). */
  resources: Resources;
  /** The labels of the tasks placed on it, summed. */
  inUse: Resources;
  /** Tasks on it now: manager task id and what it runs. */
  running: { id: number | string; command: string }[];
  /** Tasks it finished on this connection. */
  tasksDone: number;
  /** Bytes sent to it and received from it, and the time spent doing so (ms). */
  bytesTransferred: number;
  transferMs: number;
  /** When it joined (ms since the epoch). */
  joinedAt: number;
}

/** A task the manager holds: waiting for a worker, running on one, or finished there and not yet retrieved. */
export interface TaskSnapshot {
  id: number | string;
  state: "waiting" | "running" | "retrieving";
  category: string;
  /** What it runs, as a line for people (the command, or the app and its kind). */
  command: string;
  /** Declared resources (its label once placed); a missing key is unknown. */
  resources: ResourceSpec;
  /** The worker it is on (running or retrieving). */
  workerId?: string;
  /** ms since the epoch. */
  submittedAt: number;
  /** When it was sent to its worker (ms since the epoch). */
  dispatchedAt?: number;
}

/** One finished task's times, for the C manager's capacity estimate. */
export interface TaskReport {
  /** Run time on the worker (the result's EXEC_USEC / 1000). */
  execMs: number;
  /** Time moving its inputs and outputs. */
  transferMs: number;
  /** Time the manager spent on it besides transfers. */
  managerMs: number;
  resources: Resources;
}

/** Counters since the manager started. */
export interface QueueTotals {
  submitted: number;
  dispatched: number;
  done: number;
  failed: number;
  cancelled: number;
  workersJoined: number;
  workersRemoved: number;
  workersLost: number;
  bytesSent: number;
  bytesReceived: number;
}

/** Per-category counters since the manager started. */
export interface CategoryTotals {
  dispatched: number;
  done: number;
  failed: number;
  cancelled: number;
}

/** Everything the status answers and the catalog record are made from. */
export interface QueueSnapshot {
  /** The project name advertised to the catalog (`project`), when there is one. */
  project?: string;
  /** The manager's host as it listens (or its host name). */
  host: string;
  port: number;
  /** ms since the epoch. */
  startedAt: number;
  workers: WorkerSnapshot[];
  /** Tasks waiting for a worker or on one; finished and retrieved tasks are only counted. */
  tasks: TaskSnapshot[];
  totals: QueueTotals;
  categoryTotals?: Record<string, CategoryTotals>;
  /** The most recent finished tasks, oldest first (a few dozen are enough). */
  reports?: TaskReport[];
  /** Its user (default: the user running this process). */
  owner?: string;
}

/** A JSON object as the status tools read it. */
export type StatusObject = Record<string, unknown>;

const DEFAULT_CAPACITY_TASKS = 10;
const CAPACITY_ALPHA = 0.05;
const KEYS = ["cores", "memory", "disk", "gpus"] as const;

let cachedOwner: string | undefined;
function ownerOf(snapshot: QueueSnapshot): string {
  if (snapshot.owner !== undefined) return snapshot.owner;
  cachedOwner ??= userInfo().username;
  return cachedOwner;
}

/** Microseconds since the epoch, the C manager's timestamp unit. */
const micros = (ms: number) => Math.round(ms * 1000);
const divUp = (a: number, b: number) => Math.ceil(a / b);

interface TaskCounts {
  waiting: number;
  running: number;
  retrieving: number;
}

function countTasks(tasks: TaskSnapshot[], category?: string): TaskCounts {
  const counts = { waiting: 0, running: 0, retrieving: 0 };
  for (const task of tasks)
    if (category === undefined || task.category === category)
      counts[task.state]++;
  return counts;
}

/**
 * Resources the queue needs (the C manager's total_resources_needed): what waiting tasks declare
 * plus what is in use on workers. An undeclared amount counts as nothing, as in C.
 */
function resourcesNeeded(snapshot: QueueSnapshot): Resources {
  const total = { cores: 0, memory: 0, disk: 0, gpus: 0 };
  for (const task of snapshot.tasks)
    if (task.state === "waiting")
      for (const k of KEYS) total[k] += task.resources[k] ?? 0;
  for (const worker of snapshot.workers)
    for (const k of KEYS) total[k] += worker.inUse[k];
  return total;
}

/** The largest amount any waiting task declares, key by key (undefined: none declares it). */
function largestWaiting(
  snapshot: QueueSnapshot,
  category?: string,
): ResourceSpec {
  const largest: ResourceSpec = {};
  for (const task of snapshot.tasks) {
    if (task.state !== "waiting") continue;
    if (category !== undefined && task.category !== category) continue;
    for (const k of KEYS) {
      const amount = task.resources[k];
      if (amount !== undefined) largest[k] = Math.max(largest[k] ?? 0, amount);
    }
  }
  return largest;
}

/** Workers on which a task of `need` could run (C: count_workers_for_waiting_tasks). */
function workersAble(snapshot: QueueSnapshot, need: ResourceSpec): number {
  return snapshot.workers.filter((w) =>
    KEYS.every((k) => (need[k] ?? 0) <= w.resources[k]),
  ).length;
}

/** The C manager's capacity model: how many tasks the manager could keep busy (compute_capacity). */
function capacity(snapshot: QueueSnapshot): StatusObject {
  const reports = snapshot.reports ?? [];
  if (reports.length === 0) {
    const per = { cores: 1, memory: 512, disk: 1024, gpus: 0 };
    const ratio = DEFAULT_CAPACITY_TASKS;
    return {
      capacity_tasks: ratio,
      capacity_cores: per.cores * ratio,
      capacity_memory: per.memory * ratio,
      capacity_disk: per.disk * ratio,
      capacity_gpus: per.gpus * ratio,
      capacity_instantaneous: DEFAULT_CAPACITY_TASKS,
      capacity_weighted: DEFAULT_CAPACITY_TASKS,
    };
  }
  let exec = 0;
  let transfer = 0;
  let manager = 0;
  const sum = { cores: 0, memory: 0, disk: 0, gpus: 0 };
  let weighted = DEFAULT_CAPACITY_TASKS;
  let instantaneous = 0;
  for (const r of reports) {
    exec += r.execMs;
    transfer += r.transferMs;
    manager += r.managerMs;
    for (const k of KEYS) sum[k] += r.resources[k];
    const overhead = r.transferMs + r.managerMs;
    if (overhead > 0) {
      instantaneous = divUp(r.execMs, overhead);
      weighted = Math.ceil(
        CAPACITY_ALPHA * instantaneous + (1 - CAPACITY_ALPHA) * weighted,
      );
    }
  }
  const ratio = Math.max(
    DEFAULT_CAPACITY_TASKS,
    divUp(Math.max(1, exec), Math.max(1, transfer) + Math.max(1, manager)),
  );
  const n = reports.length;
  return {
    capacity_tasks: ratio,
    capacity_cores: divUp(sum.cores * ratio, n),
    capacity_memory: divUp(sum.memory * ratio, n),
    capacity_disk: divUp(sum.disk * ratio, n),
    capacity_gpus: divUp(sum.gpus * ratio, n),
    capacity_instantaneous: instantaneous,
    capacity_weighted: weighted,
  };
}

/** workers_/cores_/memory_/disk_/gpus_ inuse, total, smallest, largest over some workers. */
function resourceFields(workers: WorkerSnapshot[]): StatusObject {
  const fields: StatusObject = {};
  const add = (name: string, inuse: number, totals: number[]) => {
    fields[`${name}_inuse`] = inuse;
    fields[`${name}_total`] = totals.reduce((a, b) => a + b, 0);
    fields[`${name}_smallest`] = totals.length === 0 ? 0 : Math.min(...totals);
    fields[`${name}_largest`] = totals.length === 0 ? 0 : Math.max(...totals);
  };
  add(
    "workers",
    workers.filter((w) => w.running.length > 0).length,
    workers.map(() => 1),
  );
  for (const k of KEYS)
    add(
      k,
      workers.reduce((a, w) => a + w.inUse[k], 0),
      workers.map((w) => w.resources[k]),
    );
  return fields;
}

/** A category's line of `wable_status` (C: category_to_jx); undefined when it has no tasks at all. */
function categoryStatus(
  snapshot: QueueSnapshot,
  category: string | undefined,
): StatusObject | undefined {
  const counts = countTasks(snapshot.tasks, category);
  const totals =
    category === undefined
      ? snapshot.totals
      : (snapshot.categoryTotals?.[category] ?? {
          dispatched: 0,
          done: 0,
          failed: 0,
          cancelled: 0,
        });
  const onWorkers = counts.running + counts.retrieving;
  if (counts.waiting + onWorkers + totals.done < 1) return undefined;
  const largest = largestWaiting(snapshot, category);
  const status: StatusObject = {
    category: category ?? "whole queue",
    tasks_waiting: counts.waiting,
    tasks_running: counts.running,
    tasks_on_workers: onWorkers,
    tasks_dispatched: totals.dispatched,
    tasks_done: totals.done,
    tasks_failed: totals.failed,
    tasks_cancelled: totals.cancelled,
    workers_able: workersAble(snapshot, largest),
  };
  if (largest.cores !== undefined) status.max_cores = String(largest.cores);
  if (largest.memory !== undefined) status.max_memory = `${largest.memory} MB`;
  if (largest.disk !== undefined) status.max_disk = `${largest.disk} MB`;
  status.first_allocation_count = 0;
  status.max_allocation_count = counts.waiting + counts.running + onWorkers;
  return status;
}

/** `wable_status`: one object per category with tasks, then the whole queue. */
export function categoriesStatus(snapshot: QueueSnapshot): StatusObject[] {
  const names = new Set<string>(Object.keys(snapshot.categoryTotals ?? {}));
  for (const task of snapshot.tasks) names.add(task.category);
  const list: StatusObject[] = [];
  for (const name of [...names].sort()) {
    const status = categoryStatus(snapshot, name);
    if (status !== undefined) list.push(status);
  }
  const whole = categoryStatus(snapshot, undefined);
  if (whole !== undefined) list.push(whole);
  return list;
}

/**
 * `queue_status` (and `resources_status`): the C manager's queue_to_jx. `work_queue_status`
 * prints `project`, `name`, `port`, `tasks_waiting`, `tasks_running`, `tasks_complete` and
 * `workers`; `work_queue_factory` sizes its pool from `tasks_waiting`, `tasks_on_workers`,
 * `tasks_left`, `tasks_total_*` and `capacity_*`.
 */
export function queueStatus(snapshot: QueueSnapshot): StatusObject {
  const counts = countTasks(snapshot.tasks);
  const busy = snapshot.workers.filter((w) => w.running.length > 0).length;
  const t = snapshot.totals;
  const needed = resourcesNeeded(snapshot);
  return {
    type: "wq_master",
    ...(snapshot.project === undefined ? {} : { project: snapshot.project }),
    name: snapshot.host,
    starttime: Math.floor(snapshot.startedAt / 1000),
    owner: ownerOf(snapshot),
    port: snapshot.port,
    priority: 0,
    manager_preferred_connection: "by_ip",
    workers: snapshot.workers.length,
    workers_connected: snapshot.workers.length,
    workers_init: 0,
    workers_idle: snapshot.workers.length - busy,
    workers_busy: busy,
    workers_able: workersAble(snapshot, largestWaiting(snapshot)),
    workers_joined: t.workersJoined,
    workers_removed: t.workersRemoved,
    workers_released: 0,
    workers_idled_out: 0,
    workers_fast_aborted: 0,
    workers_lost: t.workersLost,
    tasks_waiting: counts.waiting,
    tasks_on_workers: counts.running + counts.retrieving,
    tasks_running: counts.running,
    tasks_with_results: counts.retrieving,
    tasks_left: 0,
    tasks_submitted: t.submitted,
    tasks_dispatched: t.dispatched,
    tasks_done: t.done,
    tasks_failed: t.failed,
    tasks_cancelled: t.cancelled,
    tasks_exhausted_attempts: 0,
    // The deprecated name `work_queue_status` prints as COMPLETE.
    tasks_complete: t.done,
    time_when_started: micros(snapshot.startedAt),
    bytes_sent: t.bytesSent,
    bytes_received: t.bytesReceived,
    ...capacity(snapshot),
    manager_load: 0,
    ...resourceFields(snapshot.workers),
    categories: categoriesStatus(snapshot),
    tasks_total_cores: needed.cores,
    tasks_total_memory: needed.memory,
    tasks_total_disk: needed.disk,
    tasks_total_gpus: needed.gpus,
  };
}

/**
 * The record sent to a catalog server: what workers started with `-M`, `work_queue_status -M`
 * and `work_queue_factory -M` read (the C manager's queue_lean_to_jx; small enough for one
 * uncompressed datagram).
 */
export function catalogRecord(snapshot: QueueSnapshot): StatusObject {
  const full = queueStatus(snapshot);
  const lean: StatusObject = {};
  for (const key of CATALOG_KEYS) if (key in full) lean[key] = full[key];
  return lean;
}

const CATALOG_KEYS = [
  "type",
  "project",
  "starttime",
  "owner",
  "port",
  "manager_preferred_connection",
  "tasks_waiting",
  "tasks_running",
  "tasks_complete",
  "tasks_on_workers",
  "tasks_left",
  "capacity_tasks",
  "capacity_cores",
  "capacity_memory",
  "capacity_disk",
  "capacity_gpus",
  "capacity_weighted",
  "manager_load",
  "tasks_total_cores",
  "tasks_total_memory",
  "tasks_total_disk",
  "tasks_total_gpus",
  "workers",
  "workers_connected",
] as const;

/** `task_status`: one object per task held (C: task_to_jx), running ones with their worker. */
export function tasksStatus(
  snapshot: QueueSnapshot,
  now = Date.now(),
): StatusObject[] {
  const workers = new Map(snapshot.workers.map((w) => [w.id, w]));
  return snapshot.tasks.map((task) => {
    const worker =
      task.workerId === undefined ? undefined : workers.get(task.workerId);
    // As in C: a task on a worker is "running" (its result may be waiting there), any other
    // is named by its state.
    const status: StatusObject = {
      taskid: task.id,
      state: worker !== undefined ? "running" : "WAITING",
      category: task.category,
      command: task.command,
    };
    if (worker !== undefined) status.host = worker.hostname;
    for (const k of KEYS) status[k] = task.resources[k] ?? -1;
    status.priority = "0";
    if (worker !== undefined) {
      status.address_port = worker.address;
      status.time_when_submitted = micros(task.submittedAt);
      status.time_when_commit_start = micros(task.dispatchedAt ?? 0);
      status.time_when_commit_end = micros(task.dispatchedAt ?? 0);
      status.current_time = micros(now);
    }
    return status;
  });
}

/** `worker_status`: one object per connected worker (C: worker_to_jx, plus its `worker_id`). */
export function workersStatus(
  snapshot: QueueSnapshot,
  now = Date.now(),
): StatusObject[] {
  return snapshot.workers.map((w) => {
    const status: StatusObject = {
      // Not in the C manager's answer: the identity task:state events carry.
      worker_id: w.id,
      hostname: w.hostname,
      os: w.os,
      arch: w.arch,
      address_port: w.address,
      ncpus: w.resources.cores,
      total_tasks_complete: w.tasksDone,
      total_tasks_running: w.running.length,
      total_bytes_transferred: w.bytesTransferred,
      total_transfer_time: micros(w.transferMs),
      start_time: micros(w.joinedAt),
      current_time: micros(now),
      ...resourceFields([w]),
    };
    w.running.forEach((task, n) => {
      const slot = String(n).padStart(3, "0");
      status[`current_task_${slot}_id`] = task.id;
      status[`current_task_${slot}_command`] = task.command;
    });
    return status;
  });
}
