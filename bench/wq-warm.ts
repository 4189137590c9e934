// bench:wq's warm-runtime section, on two real 2-core work_queue_workers: no-op pack: true module
// apps through warm runtimes (long-lived Work Queue tasks, reuseRuntimes: true) and through a
// process per task (reuseRuntimes: false), no-op Python apps of the Conda fixture through warm
// runtimes, and Debian's C manager running `true` on the same two workers as the floor; with
// their ratios, in the same run.

import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Executor } from "../src/index.js";
import { ratio, type Throughput } from "./lib/stats.js";
import { formatTable, ratioText } from "./lib/table.js";
import { runCManager, type Outcome, type Overhead } from "./lib/wq-cmanager.js";
import { figuresOf, roundTrips, tally, type Failures } from "./lib/wq-tally.js";
import {
  queryStatus,
  startBenchWorker,
  type BenchWorker,
} from "./lib/wq-worker.js";

const WORKERS = 2;
const WORKER = { cores: 2, memory: 1000, disk: 4000 };
const WARMUP_TASKS = 20;
/** Targets of the warm-runtime issue on this machine. */
const TARGET_TASKS_PER_SECOND = 1500;
const TARGET_VS_PROCESS = 10;
const TARGET_P50_MS = 2;

/** Throughput and round trip of one mode, and the tasks that failed. */
export type WarmRun = Throughput & Failures;

/** The section's figures, for `--json` and the printed table. */
export interface WarmSection {
  workers: number;
  worker: typeof WORKER;
  warm: WarmRun;
  perProcess: WarmRun;
  python: WarmRun;
  /** Debian's C manager running `true` (no monitoring) on the same workers. */
  floor: Outcome<Overhead>;
  warmVsProcess: number | null;
  warmVsFloor: number | null;
}

/** What the section runs: the exec-tasks app's no-op in TypeScript and in Python. */
export interface WarmApps {
  work: string;
  noopEntry: string;
  pythonEntry: string;
  /** The Conda fixture's prefix, packed with the Python app. */
  condaPrefix: string;
}

async function runMode(
  mode: string,
  apps: WarmApps,
  options: { python: boolean; reuseRuntimes: boolean },
  tasks: number,
  latencyCalls: number,
): Promise<WarmRun> {
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    pack: true,
    reuseRuntimes: options.reuseRuntimes,
    // Runtimes that joined first stay while the last ones start (a Conda bundle unpacks for
    // seconds on a loaded machine): none starts inside the timed part.
    runtimeIdleMs: 600_000,
    cacheDir: join(apps.work, "cache"),
  });
  const workers: BenchWorker[] = [];
  try {
    const { port } = await executor.listening();
    if (port === undefined) throw new Error("bench:wq: no manager port");
    for (let i = 0; i < WORKERS; i++)
      workers.push(await startBenchWorker({ port, ...WORKER }));
    // Both workers join before the first task, so the runtimes spread over both.
    while (
      ((await queryStatus(port, "queue_status"))[0]?.workers as number) <
      WORKERS
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const noop = options.python
      ? executor.pythonApp(apps.pythonEntry, "noop", {
          env: apps.condaPrefix,
          resources: { cores: 1 },
        })
      : executor.app(apps.noopEntry, "noop", { resources: { cores: 1 } });
    // Untimed: the bundle is built, sent and unpacked, runtimes start.
    const warmup = tally();
    await warmup.settleAll(WARMUP_TASKS, noop);
    const timed = tally();
    const start = performance.now();
    await timed.settleAll(tasks, noop);
    const seconds = (performance.now() - start) / 1000;
    const trips = await roundTrips(latencyCalls, noop);
    return figuresOf({ mode, tasks, seconds, warmup, timed, trips });
  } finally {
    await executor.shutdown();
    await Promise.all(workers.map((w) => w.stop()));
  }
}

/**
 * Runs every mode. `scale` scales the task counts (1: 4,000 warm module tasks, 2,000 warm Python
 * tasks and 2,000 C manager tasks; a process per task runs ~3 tasks/s per core under
 * resource_monitor, so it gets 80).
 */
export async function runWarmSection(
  apps: WarmApps,
  scale: number,
  log: (line: string) => void,
): Promise<WarmSection> {
  const count = (n: number) => Math.max(10, Math.round(n * scale));
  const where = `on ${WORKERS} ${WORKER.cores}-core workers`;
  log(`bench:wq: ${count(4000)} no-op module apps, warm runtimes, ${where}`);
  const warm = await runMode(
    "module apps, warm runtimes",
    apps,
    { python: false, reuseRuntimes: true },
    count(4000),
    count(400),
  );
  log(`bench:wq: ${count(80)} no-op module apps, a process per task, ${where}`);
  const perProcess = await runMode(
    "module apps, a process per task",
    apps,
    { python: false, reuseRuntimes: false },
    count(80),
    10,
  );
  log(`bench:wq: ${count(2000)} no-op Python apps, warm runtimes, ${where}`);
  const python = await runMode(
    "Python apps (Conda), warm runtimes",
    apps,
    { python: true, reuseRuntimes: true },
    count(2000),
    count(200),
  );
  log(
    `bench:wq: Debian's C manager, ${count(2000)} \`true\` commands, ${where}`,
  );
  const floor = await runCManager({
    monitor: false,
    tasks: count(2000),
    latencyCalls: count(200),
    warmup: WARMUP_TASKS,
    workers: WORKERS,
    worker: WORKER,
  });
  return {
    workers: WORKERS,
    worker: WORKER,
    warm,
    perProcess,
    python,
    floor,
    warmVsProcess: ratio(warm.tasksPerSecond, perProcess.tasksPerSecond),
    warmVsFloor: floor.ok
      ? ratio(warm.tasksPerSecond, floor.value.tasksPerSecond)
      : null,
  };
}

/** The section as printed lines. */
export function formatWarmSection(section: WarmSection): string[] {
  const row = (r: WarmRun) => [
    r.mode,
    String(r.tasks),
    r.tasksPerSecond.toFixed(1),
    `${r.medianLatencyMs.toFixed(2)} ms`,
    `${r.failed} + ${r.latencyFailed}`,
  ];
  const met = (ok: boolean) => (ok ? "yes" : "NO");
  const { warm, perProcess, python, floor, warmVsProcess, warmVsFloor } =
    section;
  return [
    formatTable(
      [
        `no-op tasks, pack: true, ${section.workers} ${section.worker.cores}-core workers`,
        "tasks",
        "tasks/s",
        "median round trip",
        "failed",
      ],
      [
        row(warm),
        row(perProcess),
        row(python),
        floor.ok
          ? row({ ...floor.value, mode: "Debian C manager, `true` (floor)" })
          : ["Debian C manager, `true` (floor)", "", "n/a", floor.reason, ""],
      ],
    ),
    ...[warm, perProcess, python, ...(floor.ok ? [floor.value] : [])].flatMap(
      (r) =>
        r.firstFailure === undefined
          ? []
          : [`failed tasks, ${r.mode}: first: ${r.firstFailure}`],
    ),
    "",
    formatTable(
      ["warm runtimes (module apps)", "value", "target", "met"],
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
        ["warm / C manager `true` tasks/s", ratioText(warmVsFloor), "", ""],
        [
          "Python warm / module warm tasks/s",
          ratioText(ratio(python.tasksPerSecond, warm.tasksPerSecond)),
          "",
          "",
        ],
      ],
    ),
  ];
}
