// Timing and summary statistics for the benchmarks: time an async step, repeat it, take the median.

import { readFileSync } from "node:fs";
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

/** Clock ticks per second of /proc/self/stat (USER_HZ). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) this process has used so far, all its threads, plus those of the
 * children it has reaped (from /proc/self/stat: a shell pipeline's processes once it exited).
 */
export function cpuSeconds(): number {
  const own = process.cpuUsage();
  const stat = readFileSync("/proc/self/stat", "utf8");
  // Fields 16 and 17 (cutime, cstime), counted after the ") " that closes the command name.
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  const children = Number(fields[13]) + Number(fields[14]);
  return (own.user + own.system) / 1e6 + children / USER_HZ;
}

/** Wall and CPU seconds of each run of one side of {@link alternate}, with their medians. */
export interface SideTimes {
  seconds: number[];
  cpuSeconds: number[];
  median: number;
  cpuMedian: number;
}

/**
 * Runs `first` and `second` `runs` times each as back-to-back pairs, the order swapped every pair
 * so neither side always follows the other; `setup` (untimed) runs before every timed step. Each
 * step is timed in wall and CPU seconds ({@link cpuSeconds}).
 */
export async function alternate(
  runs: number,
  first: () => Promise<unknown>,
  second: () => Promise<unknown>,
  setup: () => Promise<void>,
): Promise<{ first: SideTimes; second: SideTimes }> {
  if (runs < 1) throw new Error("alternate needs runs ≥ 1");
  const times = [first, second].map(() => ({
    seconds: [] as number[],
    cpuSeconds: [] as number[],
  }));
  const steps = [first, second];
  for (let run = 0; run < runs; run++) {
    for (const side of run % 2 === 0 ? [0, 1] : [1, 0]) {
      await setup();
      const cpu = cpuSeconds();
      const { seconds } = await timed(steps[side] as () => Promise<unknown>);
      const into = times[side] as (typeof times)[number];
      into.seconds.push(seconds);
      into.cpuSeconds.push(cpuSeconds() - cpu);
    }
  }
  const [a, b] = times.map((t) => ({
    ...t,
    median: median(t.seconds),
    cpuMedian: median(t.cpuSeconds),
  })) as [SideTimes, SideTimes];
  return { first: a, second: b };
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
