// bench:wq's warm-runtime section: no-op pack: true module apps on one 2-core work_queue_worker,
// through warm runtimes (long-lived Work Queue tasks, reuseRuntimes: true) and through a process
// per task (reuseRuntimes: false), in the same run, with their ratio.

import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Executor } from "../src/index.js";
import { median, ratio } from "./lib/stats.js";
import { formatTable, ratioText } from "./lib/table.js";
import { startBenchWorker, type BenchWorker } from "./lib/wq-worker.js";

const WORKER = { cores: 2, memory: 1000, disk: 4000 };
const WARMUP_TASKS = 20;
/** Targets of the warm-runtime issue on this machine. */
const TARGET_TASKS_PER_SECOND = 1500;
const TARGET_VS_PROCESS = 10;
const TARGET_P50_MS = 2;

/** Throughput and round trip of one mode. */
export interface WarmRun {
  mode: string;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  latencyCalls: number;
  medianLatencyMs: number;
}

/** The section's figures, for `--json` and the printed table. */
export interface WarmSection {
  warm: WarmRun;
  perProcess: WarmRun;
  warmVsProcess: number | null;
}

async function runMode(
  work: string,
  noopEntry: string,
  reuseRuntimes: boolean,
  tasks: number,
  latencyCalls: number,
): Promise<WarmRun> {
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    pack: true,
    reuseRuntimes,
    cacheDir: join(work, "cache"),
  });
  let worker: BenchWorker | undefined;
  try {
    const { port } = await executor.listening();
    if (port === undefined) throw new Error("bench:wq: no manager port");
    worker = await startBenchWorker({ port, ...WORKER });
    const noop = executor.app(noopEntry, "noop", { resources: { cores: 1 } });
    // Untimed: the worker joins, the bundle is built, sent and unpacked, runtimes start.
    await Promise.all(Array.from({ length: WARMUP_TASKS }, () => noop()));
    const start = performance.now();
    await Promise.all(Array.from({ length: tasks }, () => noop()));
    const seconds = (performance.now() - start) / 1000;
    const latencies: number[] = [];
    for (let i = 0; i < latencyCalls; i++) {
      const t = performance.now();
      await noop();
      latencies.push(performance.now() - t);
    }
    return {
      mode: reuseRuntimes ? "warm runtimes" : "a process per task",
      tasks,
      seconds,
      tasksPerSecond: tasks / seconds,
      latencyCalls,
      medianLatencyMs: median(latencies),
    };
  } finally {
    await executor.shutdown();
    await worker?.stop();
  }
}

/**
 * Runs both modes. `scale` scales the task counts (1: 2,000 warm tasks; a process per task runs
 * ~3 tasks/s per core under resource_monitor, so it gets 60).
 */
export async function runWarmSection(
  work: string,
  noopEntry: string,
  scale: number,
  log: (line: string) => void,
): Promise<WarmSection> {
  const warmTasks = Math.max(10, Math.round(2000 * scale));
  const processTasks = Math.max(10, Math.round(60 * scale));
  log(
    `bench:wq: ${warmTasks} no-op pack: true module apps through warm runtimes on one ${WORKER.cores}-core worker`,
  );
  const warm = await runMode(
    work,
    noopEntry,
    true,
    warmTasks,
    Math.max(10, Math.round(200 * scale)),
  );
  log(
    `bench:wq: ${processTasks} no-op pack: true module apps, a process per task (reuseRuntimes: false)`,
  );
  const perProcess = await runMode(work, noopEntry, false, processTasks, 10);
  return {
    warm,
    perProcess,
    warmVsProcess: ratio(warm.tasksPerSecond, perProcess.tasksPerSecond),
  };
}

/** The section as printed lines. */
export function formatWarmSection(section: WarmSection): string[] {
  const row = (r: WarmRun) => [
    r.mode,
    String(r.tasks),
    r.tasksPerSecond.toFixed(1),
    `${r.medianLatencyMs.toFixed(2)} ms`,
  ];
  const met = (ok: boolean) => (ok ? "yes" : "NO");
  const { warm, perProcess, warmVsProcess } = section;
  return [
    formatTable(
      [
        `module apps, pack: true, one ${WORKER.cores}-core worker`,
        "tasks",
        "tasks/s",
        "median round trip",
      ],
      [row(warm), row(perProcess)],
    ),
    "",
    formatTable(
      ["warm runtimes", "value", "target", "met"],
      [
        [
          "tasks/s",
          warm.tasksPerSecond.toFixed(0),
          `≥ ${TARGET_TASKS_PER_SECOND}`,
          met(warm.tasksPerSecond >= TARGET_TASKS_PER_SECOND),
        ],
        [
          "warm / process-per-task tasks/s",
          ratioText(warmVsProcess),
          `≥ ${TARGET_VS_PROCESS}`,
          met(warmVsProcess !== null && warmVsProcess >= TARGET_VS_PROCESS),
        ],
        [
          "median round trip",
          `${warm.medianLatencyMs.toFixed(2)} ms`,
          `≤ ${TARGET_P50_MS} ms`,
          met(warm.medianLatencyMs <= TARGET_P50_MS),
        ],
      ],
    ),
  ];
}
