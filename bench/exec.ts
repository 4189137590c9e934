// `npm run bench:exec`: per-task overhead of the Executor (warm module apps and spawn-per-task)
// against Dask's LocalCluster, and how close resource packing comes to the ideal makespan.

import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { Executor, type EnvpackEvent } from "../src/index.js";
import { prepareApp, repoRoot } from "./lib/fixtures.js";
import { median, ratio, type Throughput } from "./lib/stats.js";
import { formatTable, ratioText, secs, wantsJson } from "./lib/table.js";
import { seededRandom } from "./lib/seeded-random.js";

const WARM_TASKS = 10_000;
const SPAWN_TASKS = 300;
const LATENCY_CALLS = 500;
const SPAWN_LATENCY_CALLS = 50;
const WARMUP_CALLS = 50;
const PACKING_TASKS = 100;
const PACKING_SEED = 42;
const PACKING_WORKERS = [{ cores: 4 }, { cores: 2 }];
// Debian's interpreter has python3-distributed; the python3 first on PATH may not.
const DASK_PYTHON = "/usr/bin/python3";
const WARM_MODE = "envpack warm module apps (pack: true)";
const SPAWN_MODE = "envpack spawn per task (pack: true, reuseRuntimes: false)";
const TARGET_VS_DASK = 3;
const TARGET_VS_SPAWN = 10;
const TARGET_PACKING = 1.1;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Throughput and latency of one way of running no-op tasks. */
type Overhead = Throughput;

interface Packing {
  workers: { cores: number }[];
  tasks: number;
  seed: number;
  coreMix: string;
  makespanSeconds: number;
  lowerBoundSeconds: number;
  areaBoundSeconds: number;
  longestSeconds: number;
  ratio: number;
  /** Per worker, the most declared cores its running tasks held at once. */
  peakCoresInUse: Record<string, number>;
  /** Zero-overhead greedy schedules of the same tasks, as ratios to the lower bound. */
  simulated: { submissionOrder: number; largestFirst: number };
}

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

async function runDask(): Promise<Outcome<Overhead>> {
  const script = join(repoRoot(), "bench", "peers", "dask-noop.py");
  const run = await execa(
    DASK_PYTHON,
    [
      script,
      "--tasks",
      String(WARM_TASKS),
      "--latency-calls",
      String(LATENCY_CALLS),
      "--workers",
      "2",
    ],
    { reject: false, stdin: "ignore" },
  );
  if (run.exitCode !== 0) {
    const tail = String(run.stderr).trim().split("\n").slice(-3).join(" | ");
    return {
      ok: false,
      reason: `${DASK_PYTHON} dask-noop.py failed (exit ${run.exitCode ?? run.signal}): ${tail} — install python3-distributed (scripts/system-deps.sh)`,
    };
  }
  const peer = JSON.parse(String(run.stdout)) as {
    distributed: string;
    tasks: number;
    throughputSeconds: number;
    tasksPerSecond: number;
    latencyCalls: number;
    medianLatencyMs: number;
  };
  return {
    ok: true,
    value: {
      mode: `Dask ${peer.distributed}`,
      tasks: peer.tasks,
      seconds: peer.throughputSeconds,
      tasksPerSecond: peer.tasksPerSecond,
      latencyCalls: peer.latencyCalls,
      medianLatencyMs: peer.medianLatencyMs,
    },
  };
}

/** No-op module-app tasks on an Executor: all submitted at once, then sequential round trips. */
async function runExecutor(
  entry: string,
  work: string,
  options: {
    mode: string;
    reuseRuntimes: boolean;
    tasks: number;
    latencyCalls: number;
  },
): Promise<Overhead> {
  const executor = new Executor({
    pack: true,
    reuseRuntimes: options.reuseRuntimes,
    cacheDir: join(work, "cache"),
    workDir: await mkdtemp(join(work, "workers-")),
  });
  try {
    const noop = executor.app(entry, "noop", { resources: { cores: 1 } });
    // Untimed: the build (or cache hit), the unpack and the runtimes' start.
    await Promise.all(Array.from({ length: WARMUP_CALLS }, () => noop()));
    const start = performance.now();
    await Promise.all(Array.from({ length: options.tasks }, () => noop()));
    const seconds = (performance.now() - start) / 1000;
    const latencies: number[] = [];
    for (let i = 0; i < options.latencyCalls; i++) {
      const t = performance.now();
      await noop();
      latencies.push(performance.now() - t);
    }
    return {
      mode: options.mode,
      tasks: options.tasks,
      seconds,
      tasksPerSecond: options.tasks / seconds,
      latencyCalls: options.latencyCalls,
      medianLatencyMs: median(latencies),
    };
  } finally {
    await executor.shutdown();
  }
}

/** A sleeping task of the packing workload. */
interface SleepTask {
  cores: number;
  ms: number;
}

/**
 * The makespan of `tasks` on workers of `cores`, simulated with zero overhead: whenever cores free
 * up, every queued task that fits (in queue order) goes to the fullest worker it fits on.
 * A reference for what the queue order alone costs, not a model of the executor.
 */
function simulateMakespan(tasks: SleepTask[], cores: number[]): number {
  const queue = [...tasks];
  const free = [...cores];
  let running: { end: number; worker: number; cores: number }[] = [];
  let now = 0;
  while (queue.length > 0 || running.length > 0) {
    for (let i = 0; i < queue.length;) {
      const task = queue[i] as SleepTask;
      let best = -1;
      free.forEach((f, w) => {
        if (f >= task.cores && (best < 0 || f < (free[best] as number)))
          best = w;
      });
      if (best < 0) {
        i++;
        continue;
      }
      free[best] = (free[best] as number) - task.cores;
      running.push({ end: now + task.ms, worker: best, cores: task.cores });
      queue.splice(i, 1);
    }
    now = Math.min(...running.map((r) => r.end));
    for (const r of running)
      if (r.end === now) free[r.worker] = (free[r.worker] as number) + r.cores;
    running = running.filter((r) => r.end !== now);
  }
  return now;
}

/** Sleeping tasks of 1–3 cores on declared workers of 4 and 2 cores: makespan against the ideal lower bound. */
async function runPacking(entry: string, work: string): Promise<Packing> {
  const random = seededRandom(PACKING_SEED);
  // Half 1-core, 30% 2-core, 20% 3-core tasks: 3-core tasks fit only the 4-core worker, one at
  // a time, so a uniform mix would make the area bound unreachable by any schedule.
  const tasks: SleepTask[] = Array.from({ length: PACKING_TASKS }, () => {
    const r = random();
    const cores = r < 0.5 ? 1 : r < 0.8 ? 2 : 3;
    const ms = 100 + Math.floor(random() * 301);
    return { cores, ms };
  });
  const totalCores = PACKING_WORKERS.reduce((sum, w) => sum + w.cores, 0);
  const area = tasks.reduce((sum, t) => sum + t.cores * t.ms, 0) / totalCores;
  const longest = Math.max(...tasks.map((t) => t.ms));
  const lowerBound = Math.max(area, longest);
  const workerCores = PACKING_WORKERS.map((w) => w.cores);
  const largestFirst = [...tasks].sort(
    (a, b) => b.cores - a.cores || b.ms - a.ms,
  );
  const simulated = {
    submissionOrder: simulateMakespan(tasks, workerCores) / lowerBound,
    largestFirst: simulateMakespan(largestFirst, workerCores) / lowerBound,
  };

  // Declared cores in use per worker, from the executor's own task events.
  const inUse = new Map<string, number>();
  const peakInUse = new Map<string, number>();
  let timing = false;
  const onEvent = (event: EnvpackEvent) => {
    if (!timing || event.type !== "task:state") return;
    if (event.workerId === undefined || event.label === undefined) return;
    const sign =
      event.state === "running" ? 1 : event.state === "queued" ? 0 : -1;
    const now = (inUse.get(event.workerId) ?? 0) + sign * event.label.cores;
    inUse.set(event.workerId, now);
    peakInUse.set(
      event.workerId,
      Math.max(peakInUse.get(event.workerId) ?? 0, now),
    );
  };
  const executor = new Executor({
    workers: PACKING_WORKERS,
    pack: true,
    cacheDir: join(work, "cache"),
    workDir: await mkdtemp(join(work, "workers-")),
    onEvent,
  });
  try {
    const sleep = executor.app(entry, "sleep");
    // Untimed: build, unpack on both workers and a runtime in every 1-core slot.
    await Promise.all(
      Array.from({ length: totalCores }, () =>
        sleep.with({ resources: { cores: 1 } })(50),
      ),
    );
    timing = true;
    const start = performance.now();
    await Promise.all(
      tasks.map((t) => sleep.with({ resources: { cores: t.cores } })(t.ms)),
    );
    const makespan = performance.now() - start;
    return {
      workers: PACKING_WORKERS,
      tasks: tasks.length,
      seed: PACKING_SEED,
      coreMix: "1 core 50%, 2 cores 30%, 3 cores 20%; 100–400 ms",
      makespanSeconds: makespan / 1000,
      lowerBoundSeconds: lowerBound / 1000,
      areaBoundSeconds: area / 1000,
      longestSeconds: longest / 1000,
      ratio: makespan / lowerBound,
      peakCoresInUse: Object.fromEntries([...peakInUse].sort()),
      simulated,
    };
  } finally {
    await executor.shutdown();
  }
}

function overheadRow(mode: string, row: Outcome<Overhead>): string[] {
  return row.ok
    ? [
        mode,
        String(row.value.tasks),
        row.value.tasksPerSecond.toFixed(0),
        `${row.value.medianLatencyMs.toFixed(2)} ms (${row.value.latencyCalls} calls)`,
      ]
    : [mode, "", "n/a", row.reason];
}

async function main(): Promise<void> {
  const json = wantsJson(process.argv.slice(2));
  const appDir = await prepareApp("exec-tasks", log);
  const entry = join(appDir, "src", "tasks.ts");
  const work = await mkdtemp(join(tmpdir(), "envpack-bench-exec-"));
  try {
    log(
      `bench:exec: Dask LocalCluster, ${WARM_TASKS} no-op tasks + ${LATENCY_CALLS} round trips`,
    );
    const dask = await runDask();
    log(
      `bench:exec: warm module apps, ${WARM_TASKS} no-op tasks + ${LATENCY_CALLS} round trips`,
    );
    const warm = await runExecutor(entry, work, {
      mode: WARM_MODE,
      reuseRuntimes: true,
      tasks: WARM_TASKS,
      latencyCalls: LATENCY_CALLS,
    });
    log(
      `bench:exec: spawn per task, ${SPAWN_TASKS} no-op tasks + ${SPAWN_LATENCY_CALLS} round trips`,
    );
    const spawn = await runExecutor(entry, work, {
      mode: SPAWN_MODE,
      reuseRuntimes: false,
      tasks: SPAWN_TASKS,
      latencyCalls: SPAWN_LATENCY_CALLS,
    });
    log(`bench:exec: packing, ${PACKING_TASKS} sleeping tasks`);
    const packing = await runPacking(entry, work);

    const vsDask = dask.ok
      ? ratio(warm.tasksPerSecond, dask.value.tasksPerSecond)
      : null;
    const vsSpawn = ratio(warm.tasksPerSecond, spawn.tasksPerSecond);
    const latencyVsDask = dask.ok
      ? ratio(dask.value.medianLatencyMs, warm.medianLatencyMs)
      : null;
    const latencyVsSpawn = ratio(spawn.medianLatencyMs, warm.medianLatencyMs);

    if (json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            cores: cpus().length,
            warm,
            spawn,
            dask,
            packing,
            ratios: {
              warmVsDask: vsDask,
              warmVsSpawn: vsSpawn,
              daskLatencyVsWarm: latencyVsDask,
              spawnLatencyVsWarm: latencyVsSpawn,
            },
          },
          null,
          2,
        )}\n`,
      );
      return;
    }
    const met = (value: number | null, ok: (v: number) => boolean) =>
      value === null ? "n/a" : ok(value) ? "yes" : "NO";
    const p = packing;
    const lines = [
      `bench:exec — this machine: ${cpus().length} cores, shared with other engineers' work while it ran (figures vary run to run)`,
      `no-op module-app tasks declaring 1 core on one worker of this machine's size; Dask: 2 worker processes × 1 thread; both submit every task at once, then time sequential round trips`,
      "",
      formatTable(
        ["mode", "tasks", "tasks/s", "median round trip"],
        [
          overheadRow(WARM_MODE, { ok: true, value: warm }),
          overheadRow(SPAWN_MODE, { ok: true, value: spawn }),
          overheadRow(
            `Dask ${dask.ok ? dask.value.mode.replace("Dask ", "") : ""} LocalCluster (/usr/bin/python3)`,
            dask,
          ),
        ],
      ),
      "",
      `spawn per task runs ${SPAWN_TASKS} tasks and ${SPAWN_LATENCY_CALLS} round trips (a process per task is slow); tasks/s compare, task counts differ.`,
      "",
      formatTable(
        ["ratio", "value", "target", "met"],
        [
          [
            "warm / Dask throughput",
            ratioText(vsDask),
            `≥ ${TARGET_VS_DASK}`,
            met(vsDask, (v) => v >= TARGET_VS_DASK),
          ],
          [
            "warm / spawn-per-task throughput",
            ratioText(vsSpawn),
            `≥ ${TARGET_VS_SPAWN}`,
            met(vsSpawn, (v) => v >= TARGET_VS_SPAWN),
          ],
          ["Dask / warm median round trip", ratioText(latencyVsDask), "", ""],
          [
            "spawn-per-task / warm median round trip",
            ratioText(latencyVsSpawn),
            "",
            "",
          ],
        ],
      ),
      "",
      formatTable(
        ["packing", "makespan", "lower bound", "ratio", "target", "met"],
        [
          [
            `${p.tasks} tasks on workers of ${p.workers.map((w) => w.cores).join(" + ")} cores`,
            secs(p.makespanSeconds),
            secs(p.lowerBoundSeconds),
            ratioText(p.ratio),
            `≤ ${TARGET_PACKING.toFixed(2)}`,
            met(p.ratio, (v) => v <= TARGET_PACKING),
          ],
        ],
      ),
      "",
      `packing workload: seed ${p.seed}, ${p.coreMix}; lower bound = max(Σ cores·duration / Σ cores = ${secs(p.areaBoundSeconds)}, longest task = ${secs(p.longestSeconds)}).`,
      `for reference, zero-overhead greedy best fit of the same tasks: in submission order ${ratioText(p.simulated.submissionOrder)}, largest first ${ratioText(p.simulated.largestFirst)} (the queue order's share of the gap).`,
      `peak declared cores in use: ${Object.entries(p.peakCoresInUse)
        .map(([w, c]) => `${w} ${c}`)
        .join(", ")}.`,
      `The tasks sleep (they declare cores but do not use them), so 6 declared cores on this ${cpus().length}-core machine measure the scheduler, not CPU contention.`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
