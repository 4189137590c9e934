// Short command tasks in batches: when more tasks of one category (and label, and environment)
// are placed on a worker than it has slots, several go out as one Work Queue task that runs them
// one after another (batch-command.ts). Each task still gets its own result as soon as it ends; a
// cancel, a failure or a lost worker touches only the tasks it should.

import { randomBytes } from "node:crypto";
import type { Resources, TaskSpec } from "../../core/index.js";
import { canceledOutcome, lostOutcome, type Outcome } from "../outcome.js";
import {
  STREAM,
  batchTask,
  memberOutcome,
  skipName,
  streamRecords,
} from "./batch-command.js";
import { encodeTask } from "./protocol.js";
import {
  OUT_DIR,
  type MonitorChoice,
  type WorkerReport,
} from "./task-command.js";
import type { RemoteRun } from "./warm-runtimes.js";
import type { WorkerLink } from "./worker-link.js";

/** At most this many tasks to a batch. */
export const MAX_BATCH = 16;
/** A category batches once this many of its command tasks ended… */
const MIN_SAMPLES = 3;
/** …and they ran this long or less on average (ms, exponentially weighted). */
const SHORT_MS = 1000;
/** The worker's FORSAKEN status: it could not run the task there. */
const FORSAKEN = 40;

/** Options of {@link CommandBatches}. */
export interface CommandBatchesOptions {
  /** Batch at all (default true). */
  enabled: boolean;
  /** The next Work Queue task id of the manager. */
  nextId(): number;
  monitorFor(link: WorkerLink): MonitorChoice;
  /** Sends one task as its own Work Queue task (the manager's dispatch). */
  single(link: WorkerLink, task: TaskSpec, label: Resources): RemoteRun;
}

/** A placed task not yet sent, or a member of a batch. */
interface Entry {
  task: TaskSpec;
  label: Resources;
  signal: AbortSignal;
  settled: boolean;
  settle(outcome: Outcome): void;
  /** Its index in its batch (from 1), once in one. */
  index?: number | undefined;
  /** Told to skip (canceled while it waited its turn in the batch). */
  skipped?: boolean | undefined;
  /** Stops listening for a cancel while it waits to be sent. */
  detach(): void;
}

interface Group {
  link: WorkerLink;
  key: string;
  waiting: Entry[];
}

/**
 * Kills `remote` and resolves "canceled" when `signal` aborts before it ends. `cancel` does the
 * same at any time (a shutdown).
 */
export function awaitRemote(
  remote: RemoteRun,
  signal: AbortSignal,
): { outcome: Promise<Outcome>; cancel(): void } {
  let cancel = () => {};
  const outcome = new Promise<Outcome>((resolve) => {
    let settled = false;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", cancel);
      resolve(outcome);
    };
    // Killing a young task stalls that worker up to 3 s (§8); nothing here waits for it.
    cancel = () => {
      if (settled) return;
      remote.kill();
      settle(canceledOutcome());
    };
    if (signal.aborted) cancel();
    else signal.addEventListener("abort", cancel, { once: true });
    void remote.ended.then(settle);
  });
  return { outcome, cancel: () => cancel() };
}

/** The command tasks of one manager that may run in batches, and the batches on its workers. */
export class CommandBatches {
  readonly #options: CommandBatchesOptions;
  /** Per category: command tasks ended and their mean run time (ms). */
  readonly #durations = new Map<string, { n: number; meanMs: number }>();
  readonly #groups = new Map<string, Group>();
  /** Work Queue tasks sent per group and not ended. */
  readonly #inflight = new Map<string, number>();
  /** Cancels of everything sent, for a shutdown. */
  readonly #cancels = new Set<() => void>();
  #scheduled = false;

  constructor(options: CommandBatchesOptions) {
    this.#options = options;
  }

  /** Whether a task may share a Work Queue task with others: a command of a short category. */
  batchable(task: TaskSpec): boolean {
    if (!this.#options.enabled || task.payload.kind !== "command") return false;
    const seen = this.#durations.get(task.category);
    return (
      seen !== undefined && seen.n >= MIN_SAMPLES && seen.meanMs <= SHORT_MS
    );
  }

  /**
   * The part of a worker's queue place a task takes: per slot a worker holds a running batch and
   * a queued one, 2 × MAX_BATCH tasks, of which one holds the slot and the rest wait.
   */
  share(task: TaskSpec): number {
    return this.batchable(task) ? 1 / (2 * MAX_BATCH - 1) : 1;
  }

  /** Learns how long a category's command tasks run (what decides whether they batch). */
  record(task: TaskSpec, outcome: Outcome): void {
    if (task.payload.kind !== "command" || outcome.reason === "canceled")
      return;
    if (outcome.reason === "worker-lost") return;
    const seen = this.#durations.get(task.category) ?? { n: 0, meanMs: 0 };
    const wall = outcome.usage.wallMs;
    seen.meanMs = seen.n === 0 ? wall : seen.meanMs * 0.75 + wall * 0.25;
    seen.n++;
    this.#durations.set(task.category, seen);
  }

  /** Runs a batchable task placed on `link`: alone, or with others placed there meanwhile. */
  run(
    task: TaskSpec,
    link: WorkerLink,
    label: Resources,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const key = [
      link.identity.id,
      task.category,
      JSON.stringify(label),
      JSON.stringify(task.env ?? {}),
    ].join("\0");
    let group = this.#groups.get(key);
    if (group === undefined)
      this.#groups.set(key, (group = { link, key, waiting: [] }));
    const waiting = group.waiting;
    return new Promise<Outcome>((resolve) => {
      const entry: Entry = {
        task,
        label,
        signal,
        settled: false,
        detach: () => signal.removeEventListener("abort", leave),
        settle: (outcome) => {
          if (entry.settled) return;
          entry.settled = true;
          resolve(outcome);
        },
      };
      if (signal.aborted) return entry.settle(canceledOutcome());
      // Canceled before it was sent: it just leaves the queue.
      const leave = () => {
        const at = waiting.indexOf(entry);
        if (at < 0) return;
        waiting.splice(at, 1);
        entry.settle(canceledOutcome());
      };
      signal.addEventListener("abort", leave, { once: true });
      waiting.push(entry);
      this.#schedule();
    });
  }

  /** Cancels everything waiting and sent. */
  shutdown(): void {
    for (const group of this.#groups.values())
      for (const entry of group.waiting.splice(0))
        entry.settle(canceledOutcome());
    for (const cancel of [...this.#cancels]) cancel();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Every task placed in this turn of the event loop is known before batches are formed.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /**
   * Sends what waits, as far as the worker has places: two Work Queue tasks per slot (one running,
   * one queued behind it), the waiting tasks spread evenly over the free places.
   */
  #flush(): void {
    for (const [key, group] of this.#groups) {
      const { link, waiting } = group;
      if (link.closed) {
        for (const entry of waiting.splice(0)) entry.settle(lostOutcome());
      }
      if (waiting.length === 0) {
        if ((this.#inflight.get(key) ?? 0) === 0) this.#groups.delete(key);
        continue;
      }
      const label = (waiting[0] as Entry).label;
      const slots = Math.max(
        1,
        Math.floor(link.resources.cores / Math.max(1, label.cores)),
      );
      const free = 2 * slots - (this.#inflight.get(key) ?? 0);
      if (free <= 0) continue;
      const count = Math.min(free, waiting.length);
      const size = Math.min(MAX_BATCH, Math.ceil(waiting.length / count));
      for (let i = 0; i < count && waiting.length > 0; i++) {
        const entries = waiting.splice(0, size);
        for (const entry of entries) entry.detach();
        this.#inflight.set(key, (this.#inflight.get(key) ?? 0) + 1);
        if (entries.length === 1) this.#sendOne(group, entries[0] as Entry);
        else this.#sendBatch(group, entries);
      }
    }
  }

  #ended(group: Group): void {
    const n = (this.#inflight.get(group.key) ?? 1) - 1;
    this.#inflight.set(group.key, n);
    this.#schedule();
  }

  #sendOne(group: Group, entry: Entry): void {
    const remote = this.#options.single(group.link, entry.task, entry.label);
    const { outcome, cancel } = awaitRemote(remote, entry.signal);
    this.#cancels.add(cancel);
    void outcome.then((result) => {
      this.#cancels.delete(cancel);
      this.#ended(group);
      entry.settle(result);
    });
  }

  #sendBatch(group: Group, entries: Entry[]): void {
    const { link } = group;
    const monitor = this.#options.monitorFor(link);
    if (monitor.kind === "worker")
      throw new Error("a batch needs this manager's monitor, or none");
    const wqId = this.#options.nextId();
    const outName = `out-${wqId}`;
    const nonce = randomBytes(16).toString("hex");
    const label = (entries[0] as Entry).label;
    const first = (entries[0] as Entry).task;
    const tasks = entries.map((e) => e.task);
    const batch = batchTask({ wqId, tasks, label, monitor, nonce, outName });
    if (monitor.kind === "shipped") link.ensure(monitor.file);
    link.sendTask(
      encodeTask({
        id: wqId,
        cmd: batch.cmd,
        category: first.category,
        ...label,
        env: first.env,
        outputs: batch.outputs,
        dirs: batch.dirs,
      }),
    );
    entries.forEach((entry, i) => (entry.index = i + 1));
    const streams = new Map<string, Buffer>();
    const flags: string[] = [];
    let ended = false;
    const end = () => {
      if (ended) return false;
      ended = true;
      this.#cancels.delete(cancelAll);
      this.#ended(group);
      return true;
    };
    /** Settles every member whose stdout record is complete in these streams. */
    const report = (files: (name: string) => Buffer | undefined) => {
      const records = (name: string) =>
        streamRecords(files(name) ?? Buffer.alloc(0), nonce);
      const stdout = records(STREAM.stdout);
      const stderr = records(STREAM.stderr);
      const summary =
        monitor.kind === "shipped" ? records(STREAM.summary) : undefined;
      for (const entry of entries) {
        if (entry.settled) continue;
        const outcome = memberOutcome(entry.task, entry.index as number, {
          stdout,
          stderr,
          summary,
        });
        if (outcome !== undefined) entry.settle(outcome);
      }
    };
    /** Members left when the batch is gone: they run again, as on a lost worker. */
    const loseRest = () => {
      for (const entry of entries) entry.settle(lostOutcome());
    };
    const cancelAll = () => {
      if (!end()) return;
      link.kill(wqId);
      for (const entry of entries) entry.settle(canceledOutcome());
    };
    this.#cancels.add(cancelAll);
    for (const entry of entries) {
      entry.signal.addEventListener(
        "abort",
        () => {
          if (entry.settled || ended) return;
          // The first member not yet reported may be the one running: the whole batch is
          // killed and the others run again. A later one is told to skip its turn.
          const current = entries.find((e) => !e.settled && !e.skipped);
          entry.settle(canceledOutcome());
          if (current === entry) {
            end();
            link.kill(wqId);
            // After the aborts of the same turn (a cancel of everything) have settled theirs.
            setImmediate(loseRest);
          } else {
            entry.skipped = true;
            const name = skipName(wqId, entry.index as number);
            flags.push(name);
            link.flag(name);
          }
        },
        { once: true },
      );
    }
    link.track({
      wqId,
      outName,
      label,
      update: (path, offset, data) => {
        const name = path.startsWith(`${OUT_DIR}/`)
          ? path.slice(OUT_DIR.length + 1)
          : path;
        const have = streams.get(name) ?? Buffer.alloc(0);
        // A gap (never seen so far): the whole stream comes with the batch's end.
        if (offset === have.length)
          streams.set(name, Buffer.concat([have, data]));
      },
      updated: () => report((name) => streams.get(name)),
      done: (result: WorkerReport) => {
        if (!end()) return;
        for (const name of flags) link.unlink(name);
        if (result.status !== FORSAKEN) {
          report((name) => result.files.get(name));
          // The shell ended with members unreported: the first was running then (it failed);
          // the rest never ran.
          const failed = entries.find((e) => !e.settled && !e.skipped);
          failed?.settle({
            ok: false,
            reason: "exit",
            exitCode: result.exitCode,
            error: {
              name: "WorkerError",
              message: `the batch shell running this task ended (exit ${result.exitCode}) before it reported`,
            },
            usage: {
              peakMemory: 0,
              cpuMs: 0,
              disk: 0,
              wallMs: result.execUsec / 1000,
              cores: 0,
            },
          });
        }
        loseRest();
      },
      lost: () => {
        if (!end()) return;
        loseRest();
      },
    });
  }
}
