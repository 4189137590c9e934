// Timing and summary statistics for the benchmarks: time an async step, repeat it, take the median.

import { performance } from "node:perf_hooks";

/** The median of a non-empty list of numbers. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error("median of an empty list");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const high = sorted[mid] as number;
  return sorted.length % 2 === 1
    ? high
    : ((sorted[mid - 1] as number) + high) / 2;
}

/** Runs `step` once and returns its result with the wall time in seconds. */
export async function timed<T>(
  step: () => Promise<T>,
): Promise<{ value: T; seconds: number }> {
  const start = performance.now();
  const value = await step();
  return { value, seconds: (performance.now() - start) / 1000 };
}

/** Runs `step` `runs` times in sequence (`setup` before each, untimed); returns every time and the last result. */
export async function repeat<T>(
  runs: number,
  step: (run: number) => Promise<T>,
  setup?: (run: number) => Promise<void>,
): Promise<{ seconds: number[]; median: number; last: T }> {
  if (runs < 1) throw new Error("repeat needs runs ≥ 1");
  const seconds: number[] = [];
  let last: T | undefined;
  for (let run = 0; run < runs; run++) {
    if (setup !== undefined) await setup(run);
    const result = await timed(() => step(run));
    seconds.push(result.seconds);
    last = result.value;
  }
  return { seconds, median: median(seconds), last: last as T };
}

/** `a / b`, or null when `b` is zero. */
export function ratio(a: number, b: number): number | null {
  return b === 0 ? null : a / b;
}

/** Throughput and round trip of one way of running no-op tasks. */
export interface Throughput {
  mode: string;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  latencyCalls: number;
  medianLatencyMs: number;
}
