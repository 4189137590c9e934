// Tasks of a bench:wq run that did not succeed: counted, with the first one's cause, so that one
// failed task (under load resource_monitor itself now and then aborts) does not stop the bench.

import { performance } from "node:perf_hooks";
import { median, type Throughput } from "./stats.js";

/** What failed in one run: of the timed tasks, of the round trips, and the first cause seen. */
export interface Failures {
  failed: number;
  latencyFailed: number;
  firstFailure?: string | undefined;
}

/** Counts the calls that reject. */
export interface Tally {
  readonly count: number;
  readonly first: string | undefined;
  /** Awaits `call()`; a rejection is counted (its cause kept if first), never thrown. */
  settle(call: () => Promise<unknown>): Promise<void>;
  /** `n` calls at once, each settled. */
  settleAll(n: number, call: () => Promise<unknown>): Promise<void>;
}

/** A fresh tally. */
export function tally(): Tally {
  let count = 0;
  let first: string | undefined;
  const settle = async (call: () => Promise<unknown>) => {
    try {
      await call();
    } catch (error) {
      count++;
      first ??= causeOf(error);
    }
  };
  return {
    get count() {
      return count;
    },
    get first() {
      return first;
    },
    settle,
    async settleAll(n, call) {
      await Promise.all(Array.from({ length: n }, () => settle(call)));
    },
  };
}

/** One line: the task's reason (a TaskError carries its result) and the message, cut short. */
function causeOf(error: unknown): string {
  const reason = (error as { result?: { reason?: unknown } } | null)?.result
    ?.reason;
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/\s+/g, " ")
    .slice(0, 160);
  return typeof reason === "string" ? `${reason}: ${message}` : message;
}

/** Calls made one after another: how many, the median of their times (ms), their tally. */
export interface RoundTrips {
  calls: number;
  medianMs: number;
  tally: Tally;
}

/** `n` calls one after another. */
export async function roundTrips(
  n: number,
  call: () => Promise<unknown>,
): Promise<RoundTrips> {
  const trips = tally();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await trips.settle(call);
    times.push(performance.now() - start);
  }
  return { calls: n, medianMs: median(times), tally: trips };
}

/** A run's figures: its rate, its round trips, and what failed in its warm-up, timed tasks and round trips. */
export function figuresOf(run: {
  mode: string;
  tasks: number;
  seconds: number;
  warmup: Tally;
  timed: Tally;
  trips: RoundTrips;
}): Throughput & Failures {
  return {
    mode: run.mode,
    tasks: run.tasks,
    seconds: run.seconds,
    tasksPerSecond: run.tasks / run.seconds,
    latencyCalls: run.trips.calls,
    medianLatencyMs: run.trips.medianMs,
    failed: run.timed.count,
    latencyFailed: run.trips.tally.count,
    firstFailure: run.warmup.first ?? run.timed.first ?? run.trips.tally.first,
  };
}
