// A run log folded into what a report shows: every task and attempt, workers and their presence,
// apps, labels over time, bundle steps — and the aggregated figures `envpack report --json` prints.

import type { Resources, WarnEvent } from "../core/light.js";
import { readRunLog, type LogRecord } from "./read-run-log.js";

/** One attempt of a task, times in ms since the run started. */
export interface AttemptRow {
  task: TaskRow;
  worker: string;
  start: number;
  /** Undefined while it ran when the log ended. */
  end: number | undefined;
  label: Resources | undefined;
  /** ok, a failure reason (exit, signal, over-resources, worker-lost…), or "running". */
  outcome: string;
  /** Ran again after this one. */
  retried: boolean;
  peakMemory: number | undefined;
  cores: number | undefined;
  cpuMs: number | undefined;
  durationMs: number | undefined;
  error: string | undefined;
}

/** One task: a call of an app. */
export interface TaskRow {
  id: string;
  app: string;
  category: string;
  /** done, failed, canceled, running, waiting. */
  state: string;
  attempts: AttemptRow[];
}

/** A worker and when it was there (ms since the run started). */
export interface WorkerRow {
  id: string;
  resources: Resources;
  joined: number;
  left: number | undefined;
}

/** A step of bringing a bundle to a worker. */
export interface BundleStepRow {
  step: "build" | "transfer" | "unpack";
  /** "host" for a build. */
  place: string;
  digest: string;
  app: string | undefined;
  durationMs: number;
  bytes: number | undefined;
  cached: boolean | undefined;
}

/** A category's label chosen at a time, with the peaks it was chosen from. */
export interface LabelRow {
  category: string;
  at: number;
  label: Partial<Resources> | null;
  peaks: { memory: number; cores: number; disk: number };
}

/** Everything a run log says, folded. */
export interface RunData {
  log: string;
  /** ms since the epoch of the first record. */
  startedAt: number;
  /** ms from the first record to the last. */
  durationMs: number;
  /** The log has its run:end record (the executor shut down). */
  complete: boolean;
  /** Runs in the log (an executor's each); the data is of the last. */
  runs: number;
  backend: string;
  apps: Map<string, { kind: string }>;
  tasks: TaskRow[];
  attempts: AttemptRow[];
  workers: WorkerRow[];
  labels: LabelRow[];
  bundles: BundleStepRow[];
  warnings: WarnEvent[];
}

/** Reads and folds a run log (see {@link readRunLog} for its errors and warnings). */
export async function loadRunData(path: string): Promise<RunData> {
  const data: RunData = {
    log: path,
    startedAt: 0,
    durationMs: 0,
    complete: false,
    runs: 1,
    backend: "",
    apps: new Map(),
    tasks: [],
    attempts: [],
    workers: [],
    labels: [],
    bundles: [],
    warnings: [],
  };
  const tasks = new Map<string, TaskRow>();
  const open = new Map<string, AttemptRow>();
  const present = new Map<string, WorkerRow>();
  let t0 = Number.NaN;
  let last = 0;
  const take = (r: LogRecord) => {
    if (Number.isNaN(t0)) t0 = r.t;
    const at = r.t - t0;
    last = Math.max(last, at);
    switch (r.type) {
      case "run:start":
        // A log appended to by several executors: the report is of the last run.
        if (data.tasks.length > 0 || data.workers.length > 0) {
          data.runs++;
          t0 = r.t;
          last = 0;
          tasks.clear();
          open.clear();
          present.clear();
          data.apps.clear();
          for (const list of [
            data.tasks,
            data.attempts,
            data.workers,
            data.labels,
            data.bundles,
          ])
            list.length = 0;
          data.complete = false;
        }
        data.backend = String(r["backend"] ?? "");
        return;
      case "run:end":
        data.complete = true;
        return;
      case "app:defined":
        data.apps.set(String(r["app"]), { kind: String(r["kind"]) });
        return;
      case "worker:joined": {
        const id = String(r["workerId"]);
        const row: WorkerRow = {
          id,
          resources: r["resources"] as Resources,
          joined: at,
          left: undefined,
        };
        present.set(id, row);
        data.workers.push(row);
        return;
      }
      case "worker:left": {
        const row = present.get(String(r["workerId"]));
        if (row !== undefined) row.left = at;
        present.delete(String(r["workerId"]));
        return;
      }
      case "label:chosen":
        data.labels.push({
          category: String(r["category"]),
          at,
          label: (r["label"] as Partial<Resources> | null) ?? null,
          peaks: r["peaks"] as LabelRow["peaks"],
        });
        return;
      case "bundle:step":
        data.bundles.push({
          step: r["step"] as BundleStepRow["step"],
          place: typeof r["workerId"] === "string" ? r["workerId"] : "host",
          digest: String(r["digest"]),
          app: typeof r["app"] === "string" ? r["app"] : undefined,
          durationMs: Number(r["durationMs"]),
          bytes: typeof r["bytes"] === "number" ? r["bytes"] : undefined,
          cached: typeof r["cached"] === "boolean" ? r["cached"] : undefined,
        });
        return;
      case "task:state":
        taskState(r, at);
        return;
      default:
        return;
    }
  };
  const taskState = (r: LogRecord, at: number) => {
    const id = String(r["id"]);
    let task = tasks.get(id);
    if (task === undefined) {
      const category = String(r["category"]);
      task = {
        id,
        app: typeof r["app"] === "string" ? r["app"] : category,
        category,
        state: "waiting",
        attempts: [],
      };
      tasks.set(id, task);
      data.tasks.push(task);
    }
    const state = r["state"];
    if (state === "running") {
      const attempt: AttemptRow = {
        task,
        worker: String(r["workerId"]),
        start: at,
        end: undefined,
        label: r["label"] as Resources | undefined,
        outcome: "running",
        retried: false,
        peakMemory: undefined,
        cores: undefined,
        cpuMs: undefined,
        durationMs: undefined,
        error: undefined,
      };
      task.attempts.push(attempt);
      data.attempts.push(attempt);
      open.set(id, attempt);
      task.state = "running";
    } else if (state === "done" || state === "failed") {
      const attempt = open.get(id);
      open.delete(id);
      const result = r["result"] as
        | {
            reason?: string;
            durationMs?: number;
            usage?: { peakMemory?: number; cores?: number; cpuMs?: number };
            error?: { name?: string; message?: string };
            exitCode?: number;
            exceeded?: string;
          }
        | undefined;
      task.state = state === "done" ? "done" : "failed";
      if (attempt === undefined) return;
      attempt.end = at;
      attempt.outcome = result?.reason ?? (state === "done" ? "ok" : "failed");
      attempt.peakMemory = result?.usage?.peakMemory;
      attempt.cores = result?.usage?.cores;
      attempt.cpuMs = result?.usage?.cpuMs;
      attempt.durationMs = result?.durationMs;
      if (state === "failed") {
        task.state = attempt.outcome === "canceled" ? "canceled" : "failed";
        attempt.error =
          result?.error !== undefined
            ? `${result.error.name ?? "Error"}: ${result.error.message ?? ""}`
            : result?.exceeded !== undefined
              ? `over its ${result.exceeded} label`
              : result?.exitCode !== undefined
                ? `${attempt.outcome} ${result.exitCode}`
                : attempt.outcome;
      }
    } else if (state === "retry") {
      const previous = task.attempts[task.attempts.length - 1];
      if (previous !== undefined) previous.retried = true;
      task.state = "waiting";
    }
  };
  data.warnings = await readRunLog(path, take);
  data.startedAt = Number.isNaN(t0) ? 0 : t0;
  data.durationMs = last;
  return data;
}

/** Aggregated figures of a run (`envpack report --json`). Times in seconds. */
export interface RunFigures {
  log: string;
  backend: string;
  startedAt: string;
  durationS: number;
  /** False when the log has no run:end record (the submitter stopped before shutdown). */
  complete: boolean;
  /** Runs the log holds (executors that shared it); the figures are of the last. */
  runs: number;
  tasks: {
    total: number;
    done: number;
    failed: number;
    canceled: number;
    unfinished: number;
    attempts: number;
    /** Attempts that ran again: retries after a crash, over-label retries, lost workers. */
    retries: number;
    overLabel: number;
    workerLost: number;
  };
  apps: Array<{
    app: string;
    tasks: number;
    done: number;
    failed: number;
    attempts: number;
    retries: number;
    overLabel: number;
    /** Wall time of each task's last finished attempt. */
    wallS: { median: number | null; p95: number | null };
    peakMemoryMB: number | null;
  }>;
  workers: Array<{
    id: string;
    resources: Resources;
    joinedS: number;
    leftS: number | null;
    attempts: number;
    /**
     * Fractions of what the worker had while it was there: cores and memory its running tasks
     * declared (labels), cores they used (CPU time), and memory at their measured peaks.
     */
    utilisation: {
      coresDeclared: number;
      coresMeasured: number;
      memoryDeclared: number;
      memoryMeasured: number;
    };
  }>;
  labels: Array<{
    category: string;
    changes: number;
    label: Partial<Resources> | null;
  }>;
  bundles: Array<{
    step: string;
    place: string;
    app: string | null;
    durationMs: number;
    bytes: number | null;
  }>;
  warnings: Array<{ code: string; message: string }>;
}

/** The figures of a folded run. */
export function runFigures(data: RunData): RunFigures {
  const end = data.durationMs;
  const attempts = data.attempts;
  const count = (f: (a: AttemptRow) => boolean) =>
    attempts.reduce((n, a) => n + (f(a) ? 1 : 0), 0);
  const byApp = new Map<string, TaskRow[]>();
  for (const app of data.apps.keys()) byApp.set(app, []);
  for (const task of data.tasks) {
    let list = byApp.get(task.app);
    if (list === undefined) byApp.set(task.app, (list = []));
    list.push(task);
  }
  const byWorker = new Map<string, AttemptRow[]>();
  for (const a of attempts) {
    let list = byWorker.get(a.worker);
    if (list === undefined) byWorker.set(a.worker, (list = []));
    list.push(a);
  }
  const lastLabel = new Map<string, LabelRow[]>();
  for (const l of data.labels) {
    let list = lastLabel.get(l.category);
    if (list === undefined) lastLabel.set(l.category, (list = []));
    list.push(l);
  }
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    log: data.log,
    backend: data.backend,
    startedAt: new Date(data.startedAt).toISOString(),
    durationS: round(end / 1000),
    complete: data.complete,
    runs: data.runs,
    tasks: {
      total: data.tasks.length,
      done: data.tasks.filter((t) => t.state === "done").length,
      failed: data.tasks.filter((t) => t.state === "failed").length,
      canceled: data.tasks.filter((t) => t.state === "canceled").length,
      unfinished: data.tasks.filter(
        (t) => t.state === "running" || t.state === "waiting",
      ).length,
      attempts: attempts.length,
      retries: count((a) => a.retried),
      overLabel: count((a) => a.retried && a.outcome === "over-resources"),
      workerLost: count((a) => a.outcome === "worker-lost"),
    },
    apps: [...byApp].map(([app, tasks]) => {
      const walls: number[] = [];
      let attemptCount = 0;
      let retries = 0;
      let overLabel = 0;
      let peak: number | undefined;
      for (const t of tasks) {
        let lastEnded: AttemptRow | undefined;
        for (const a of t.attempts) {
          attemptCount++;
          if (a.retried) retries++;
          if (a.retried && a.outcome === "over-resources") overLabel++;
          if (a.peakMemory !== undefined)
            peak = Math.max(peak ?? 0, a.peakMemory);
          if (a.end !== undefined) lastEnded = a;
        }
        if (lastEnded !== undefined) walls.push(wallOf(lastEnded) / 1000);
      }
      return {
        app,
        tasks: tasks.length,
        done: tasks.filter((t) => t.state === "done").length,
        failed: tasks.filter((t) => t.state === "failed").length,
        attempts: attemptCount,
        retries,
        overLabel,
        wallS: quantiles(walls, round),
        peakMemoryMB: peak === undefined ? null : round(peak),
      };
    }),
    workers: data.workers.map((w) => {
      const mine = (byWorker.get(w.id) ?? []).filter(
        (a) =>
          a.start >= w.joined && (w.left === undefined || a.start <= w.left),
      );
      const presentS = Math.max(1e-3, ((w.left ?? end) - w.joined) / 1000);
      let coresDeclared = 0;
      let coresMeasured = 0;
      let memoryDeclared = 0;
      let memoryMeasured = 0;
      for (const a of mine) {
        const s = ((a.end ?? end) - a.start) / 1000;
        coresDeclared += (a.label?.cores ?? 0) * s;
        memoryDeclared += (a.label?.memory ?? 0) * s;
        coresMeasured += (a.cpuMs ?? 0) / 1000;
        memoryMeasured += (a.peakMemory ?? 0) * s;
      }
      const per = (sum: number, total: number) =>
        total > 0 ? round(sum / (total * presentS)) : 0;
      return {
        id: w.id,
        resources: w.resources,
        joinedS: round(w.joined / 1000),
        leftS: w.left === undefined ? null : round(w.left / 1000),
        attempts: mine.length,
        utilisation: {
          coresDeclared: per(coresDeclared, w.resources.cores),
          coresMeasured: per(coresMeasured, w.resources.cores),
          memoryDeclared: per(memoryDeclared, w.resources.memory),
          memoryMeasured: per(memoryMeasured, w.resources.memory),
        },
      };
    }),
    labels: [...lastLabel].map(([category, list]) => ({
      category,
      changes: list.length,
      label: (list[list.length - 1] as LabelRow).label,
    })),
    bundles: data.bundles.map((b) => ({
      step: b.step,
      place: b.place,
      app: b.app ?? null,
      durationMs: round(b.durationMs),
      bytes: b.bytes ?? null,
    })),
    warnings: data.warnings.map((w) => ({ code: w.code, message: w.message })),
  };
}

/** An attempt's wall time in ms: as its result says, else from the log's times. */
export function wallOf(a: AttemptRow): number {
  return a.durationMs ?? (a.end ?? a.start) - a.start;
}

/** Median and p95 (nearest rank) of `values`, rounded; null when there are none. */
function quantiles(
  values: number[],
  round: (n: number) => number,
): { median: number | null; p95: number | null } {
  // A typed array sorts numerically without a comparator call per pair.
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) =>
    sorted.length === 0
      ? null
      : round(
          sorted[
            Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)
          ] as number,
        );
  return { median: at(0.5), p95: at(0.95) };
}
