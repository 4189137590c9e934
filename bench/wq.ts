// `npm run bench:wq`: envpack's Work Queue manager driving real work_queue_workers on 127.0.0.1,
// against Debian's C manager (python3-workqueue) in the same run: no-op command tasks on one
// 2-core worker, pack: true module apps, a 40 MB bundle shipped to three workers, and warm
// runtimes on two workers (bench/wq-warm.ts; `--warm` runs that section alone).

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { MAX_BATCH } from "../src/exec/index.js";
import { build, Executor, type EnvpackEvent } from "../src/index.js";
import { prepareApp, prepareConda } from "./lib/fixtures.js";
import { median, ratio } from "./lib/stats.js";
import { formatTable, ratioText, wantsJson } from "./lib/table.js";
import { formatWarmSection, runWarmSection } from "./wq-warm.js";
import {
  C_PYTHON,
  cpuPerTask,
  runCManager,
  type CManagerRun,
  type Outcome,
  type Overhead,
} from "./lib/wq-cmanager.js";
import {
  queryStatus,
  startBenchWorker,
  type BenchWorker,
} from "./lib/wq-worker.js";

/** `--tasks N` scales the runs down for a quick look (the figures of record use the defaults). */
const SCALE = scaleFromArgs(process.argv.slice(2));
/** `--warm`: only the warm-runtime section (bench/wq-warm.ts). */
const WARM_ONLY = process.argv.includes("--warm");
/** `--commands`: only the command tasks against the C manager (issue 12's figure). */
const COMMANDS_ONLY = process.argv.includes("--commands");
const COMMAND_TASKS = Math.round(2000 * SCALE);
const MODULE_TASKS = Math.round(500 * SCALE);
const LATENCY_CALLS = Math.max(10, Math.round(200 * SCALE));
const WARMUP_TASKS = 20;
const WORKER = { cores: 2, memory: 1000, disk: 4000 };
const BUNDLE_BYTES = 40_000_000;
const BUNDLE_WORKERS = 3;
const BUNDLE_ROUNDS = 2;
const TARGET_VS_C = 2;
const TARGET_BUNDLES_PER_WORKER = 1;

const log = (line: string) => process.stderr.write(`${line}\n`);

function scaleFromArgs(args: string[]): number {
  const at = args.indexOf("--tasks");
  if (at < 0) return 1;
  const tasks = Number(args[at + 1]);
  if (!Number.isInteger(tasks) || tasks < 10)
    throw new Error("bench:wq: --tasks takes an integer ≥ 10");
  return tasks / 2000;
}

/** The C manager's run beside envpack's: the same tasks on one worker of the same size. */
function cRun(monitor: boolean): CManagerRun {
  return {
    monitor,
    tasks: COMMAND_TASKS,
    latencyCalls: LATENCY_CALLS,
    warmup: WARMUP_TASKS,
    workers: 1,
    worker: WORKER,
  };
}

/** The port of an executor's manager (its workers connect there). */
async function managerPort(executor: Executor): Promise<number> {
  const where = await executor.listening();
  if (where.port === undefined) throw new Error("bench:wq: no manager port");
  return where.port;
}

/** No-op tasks through envpack's manager: warm-up, all at once, then sequential round trips. */
async function runEnvpack(
  mode: string,
  work: string,
  tasks: number,
  makeCall: (executor: Executor) => () => Promise<unknown>,
  options: { pack: boolean; monitor: boolean },
): Promise<Overhead> {
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    pack: options.pack,
    monitor: options.monitor,
    cacheDir: join(work, "cache"),
  });
  let worker: BenchWorker | undefined;
  try {
    worker = await startBenchWorker({
      port: await managerPort(executor),
      ...WORKER,
    });
    const call = makeCall(executor);
    // Untimed: the worker joins, the bundle (if any) is built and sent.
    await Promise.all(Array.from({ length: WARMUP_TASKS }, () => call()));
    const workerAtStart = await worker.cpuNow();
    const managerAtStart = process.cpuUsage();
    const start = performance.now();
    await Promise.all(Array.from({ length: tasks }, () => call()));
    const seconds = (performance.now() - start) / 1000;
    const managerUsed = process.cpuUsage(managerAtStart);
    const workerAtEnd = await worker.cpuNow();
    const latencies: number[] = [];
    for (let i = 0; i < LATENCY_CALLS; i++) {
      const t = performance.now();
      await call();
      latencies.push(performance.now() - t);
    }
    await executor.shutdown();
    return {
      mode,
      tasks,
      seconds,
      tasksPerSecond: tasks / seconds,
      latencyCalls: LATENCY_CALLS,
      medianLatencyMs: median(latencies),
      cpu: cpuPerTask(
        workerAtStart === undefined || workerAtEnd === undefined
          ? undefined
          : workerAtEnd - workerAtStart,
        (managerUsed.user + managerUsed.system) / 1e6,
        tasks,
      ),
    };
  } finally {
    await executor.shutdown();
    await worker?.stop();
  }
}

/** Per worker of the bundle run: what was sent to it and when its first result came back. */
interface BundleWorker {
  bytesSent: number;
  bundlesSent: number;
  tasks: number;
  firstResultSeconds: number;
}

interface BundleRun {
  bundleBytes: number;
  tasks: number;
  workers: BundleWorker[];
}

/**
 * A module app whose bundle is ~{@link BUNDLE_BYTES}: the exec-tasks app's noop next to a file of
 * random bytes it reads by `new URL(…, import.meta.url)` (incompressible, so the bundle keeps its size).
 */
async function bigApp(work: string, baseBytes: number): Promise<string> {
  const dir = join(work, "big-app");
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "bench-wq-big", private: true, type: "module" }),
  );
  await writeFile(
    join(dir, "blob.bin"),
    randomBytes(Math.max(1_000_000, BUNDLE_BYTES - baseBytes)),
  );
  const entry = join(dir, "big.mjs");
  await writeFile(
    entry,
    [
      'import { statSync } from "node:fs";',
      'const blob = new URL("./blob.bin", import.meta.url);',
      "export function size() {",
      "  return statSync(blob).size;",
      "}",
      "",
    ].join("\n"),
  );
  return entry;
}

/** Three workers, {@link BUNDLE_ROUNDS} rounds of one task per worker on the ~40 MB bundle. */
async function runBundle(work: string, noopEntry: string): Promise<BundleRun> {
  const cacheDir = join(work, "cache");
  const base = await build({ entries: [noopEntry], cacheDir });
  const entry = await bigApp(work, base.size);
  const bundle = await build({ entries: [entry], cacheDir });
  const firstResult = new Map<string, number>();
  let start = 0;
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    pack: true,
    cacheDir,
    onEvent: (event: EnvpackEvent) => {
      if (
        event.type === "task:state" &&
        event.state === "done" &&
        event.workerId !== undefined &&
        !firstResult.has(event.workerId)
      )
        firstResult.set(event.workerId, (performance.now() - start) / 1000);
    },
  });
  const workers: BenchWorker[] = [];
  try {
    const port = await managerPort(executor);
    for (let i = 0; i < BUNDLE_WORKERS; i++)
      workers.push(
        await startBenchWorker({ port, cores: 1, memory: 1000, disk: 4000 }),
      );
    // Every worker joins before the first task, so each gets one per round.
    while (
      ((await queryStatus(port, "queue_status"))[0]?.workers as number) <
      BUNDLE_WORKERS
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const size = executor.app<[], number>(entry, "size", {
      resources: { cores: 1 },
    });
    start = performance.now();
    for (let round = 0; round < BUNDLE_ROUNDS; round++)
      await Promise.all(Array.from({ length: BUNDLE_WORKERS }, () => size()));
    const status = await queryStatus(port, "worker_status");
    return {
      bundleBytes: bundle.size,
      tasks: BUNDLE_WORKERS * BUNDLE_ROUNDS,
      workers: status.map((w) => {
        const bytes = w.total_bytes_transferred as number;
        const id = w.worker_id as string | undefined;
        return {
          bytesSent: bytes,
          bundlesSent: bytes / bundle.size,
          tasks: w.total_tasks_complete as number,
          firstResultSeconds:
            (id === undefined ? undefined : firstResult.get(id)) ?? NaN,
        };
      }),
    };
  } finally {
    await executor.shutdown();
    await Promise.all(workers.map((w) => w.stop()));
  }
}

function cpuMs(cpu: NonNullable<Overhead["cpu"]>): number {
  return cpu.workerMs + cpu.managerMs;
}

function overheadRow(row: Outcome<Overhead>, label: string): string[] {
  if (!row.ok) return [label, "", "n/a", row.reason, "", ""];
  const { cpu } = row.value;
  return [
    label,
    String(row.value.tasks),
    row.value.tasksPerSecond.toFixed(0),
    `${row.value.medianLatencyMs.toFixed(2)} ms (${row.value.latencyCalls} calls)`,
    cpu === undefined
      ? "n/a"
      : `${(cpu.workerMs + cpu.managerMs).toFixed(1)} ms: ${cpu.workerMs.toFixed(1)} + ${cpu.managerMs.toFixed(1)}`,
    cpu === undefined
      ? "n/a"
      : `${((cpus().length * 1000) / (cpu.workerMs + cpu.managerMs)).toFixed(0)} tasks/s`,
  ];
}

async function main(): Promise<void> {
  const json = wantsJson(process.argv.slice(2));
  const appDir = await prepareApp("exec-tasks", log);
  const noopEntry = join(appDir, "src", "tasks.ts");
  const work = await mkdtemp(join(tmpdir(), "envpack-bench-wq-"));
  const warmApps = async () => ({
    work,
    noopEntry,
    pythonEntry: join(appDir, "src", "tasks.py"),
    condaPrefix: (await prepareConda("small", log)).prefix,
  });
  try {
    if (WARM_ONLY) {
      const warm = await runWarmSection(await warmApps(), SCALE, log);
      process.stdout.write(
        json
          ? `${JSON.stringify({ cores: cpus().length, warm }, null, 2)}\n`
          : `${formatWarmSection(warm).join("\n")}\n`,
      );
      return;
    }
    const noopCommand = (executor: Executor) => {
      const noop = executor.command(["true"], { resources: { cores: 1 } });
      return () => noop();
    };
    // Each pair runs back to back (the C manager, then envpack): both see about the same load.
    log(
      `bench:wq: Debian's C manager, ${COMMAND_TASKS} no-op commands + ${LATENCY_CALLS} round trips`,
    );
    const c = await runCManager(cRun(false));
    log(
      `bench:wq: envpack's manager, ${COMMAND_TASKS} no-op commands + ${LATENCY_CALLS} round trips`,
    );
    const commands = await runEnvpack(
      "envpack command tasks, monitor: false",
      work,
      COMMAND_TASKS,
      noopCommand,
      { pack: false, monitor: false },
    );
    log(
      `bench:wq: Debian's C manager with resource_monitor, ${COMMAND_TASKS} no-op commands + ${LATENCY_CALLS} round trips`,
    );
    const cMonitored = await runCManager(cRun(true));
    log(
      `bench:wq: envpack's manager with resource_monitor, ${COMMAND_TASKS} no-op commands + ${LATENCY_CALLS} round trips`,
    );
    const commandsMonitored = await runEnvpack(
      "envpack command tasks, resource_monitor",
      work,
      COMMAND_TASKS,
      noopCommand,
      { pack: false, monitor: true },
    );
    let modules: Overhead | undefined;
    let bundle: BundleRun | undefined;
    let warm: Awaited<ReturnType<typeof runWarmSection>> | undefined;
    if (!COMMANDS_ONLY) {
      log(
        `bench:wq: envpack's manager, ${MODULE_TASKS} no-op pack: true module apps + ${LATENCY_CALLS} round trips`,
      );
      modules = await runEnvpack(
        "envpack module apps (pack: true)",
        work,
        MODULE_TASKS,
        (executor) => {
          const noop = executor.app(noopEntry, "noop", {
            resources: { cores: 1 },
          });
          return () => noop();
        },
        { pack: true, monitor: true },
      );
      log(
        `bench:wq: a ${(BUNDLE_BYTES / 1e6).toFixed(0)} MB bundle on ${BUNDLE_WORKERS} workers`,
      );
      bundle = await runBundle(work, noopEntry);
      warm = await runWarmSection(await warmApps(), SCALE, log);
    }

    const vsC = c.ok
      ? ratio(commands.tasksPerSecond, c.value.tasksPerSecond)
      : null;
    const latencyVsC = c.ok
      ? ratio(c.value.medianLatencyMs, commands.medianLatencyMs)
      : null;
    const vsCMonitored = cMonitored.ok
      ? ratio(commandsMonitored.tasksPerSecond, cMonitored.value.tasksPerSecond)
      : null;
    const cpuVsC =
      c.ok && c.value.cpu !== undefined && commands.cpu !== undefined
        ? ratio(cpuMs(c.value.cpu), cpuMs(commands.cpu))
        : null;
    const worstBundles =
      bundle === undefined
        ? undefined
        : Math.max(...bundle.workers.map((w) => w.bundlesSent));
    const [load1, load5] = loadavg();
    if (json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            cores: cpus().length,
            loadAverage: loadavg(),
            worker: WORKER,
            c,
            cMonitored,
            commands,
            commandsMonitored,
            modules,
            bundle,
            warm,
            ratios: {
              commandsVsC: vsC,
              commandsVsCMonitored: vsCMonitored,
              cCpuPerTaskVsCommands: cpuVsC,
              cLatencyVsCommands: latencyVsC,
            },
          },
          null,
          2,
        )}\n`,
      );
      return;
    }
    const met = (
      value: number | null | undefined,
      ok: (v: number) => boolean,
    ) =>
      value === null || value === undefined || Number.isNaN(value)
        ? "n/a"
        : ok(value)
          ? "yes"
          : "NO";
    const rows = [
      overheadRow(
        { ok: true, value: commands },
        "envpack: `true` commands, monitor: false",
      ),
      overheadRow(c, `Debian C manager (${C_PYTHON}): \`true\` commands`),
      overheadRow(
        { ok: true, value: commandsMonitored },
        "envpack: `true` commands in resource_monitor (default)",
      ),
      overheadRow(
        cMonitored,
        "Debian C manager, every task in resource_monitor",
      ),
    ];
    if (modules !== undefined)
      rows.push(
        overheadRow(
          { ok: true, value: modules },
          "envpack: no-op module apps, pack: true (no C peer)",
        ),
      );
    const ratios = [
      [
        "envpack / C manager tasks/s (commands, no monitor)",
        ratioText(vsC),
        `≥ ${TARGET_VS_C}`,
        met(vsC, (v) => v >= TARGET_VS_C),
      ],
      [
        "C manager / envpack CPU per task (commands, no monitor)",
        ratioText(cpuVsC),
        "",
        "",
      ],
      [
        "envpack / C manager tasks/s (both in resource_monitor)",
        ratioText(vsCMonitored),
        `≥ ${TARGET_VS_C}`,
        met(vsCMonitored, (v) => v >= TARGET_VS_C),
      ],
      ["C manager / envpack median round trip", ratioText(latencyVsC), "", ""],
    ];
    if (worstBundles !== undefined)
      ratios.push([
        "bundles sent per worker (worst worker)",
        ratioText(worstBundles),
        `≤ ${TARGET_BUNDLES_PER_WORKER} (+ small files)`,
        met(worstBundles, (v) => v < TARGET_BUNDLES_PER_WORKER + 0.1),
      ]);
    const lines = [
      `bench:wq — this machine: ${cpus().length} cores, load average ${load1?.toFixed(1)} (1 min) / ${load5?.toFixed(1)} (5 min) at the end, shared with other work while it ran: tasks/s vary run to run; each ratio compares two runs made back to back`,
      `one work_queue_worker --cores ${WORKER.cores} --memory ${WORKER.memory} on 127.0.0.1; ${COMMAND_TASKS} tasks declaring 1 core, submitted at once after ${WARMUP_TASKS} untimed warm-up tasks, then ${LATENCY_CALLS} round trips one after another`,
      `C manager: one Work Queue task per task, \`/bin/sh -c true\` (the worker forks, makes a sandbox, runs sh, reports; the manager fetches the result). envpack: command tasks of a category seen to run ≤ 1 s, placed on a worker beyond its slots, go out up to ${MAX_BATCH} to one Work Queue task whose shell runs each in a process of its own (a fork running \`true\`, sh's builtin as in \`/bin/sh -c true\`), in its own directory, with its own stdout, stderr and exit code streamed back as it ends; alone (the warm-up, the round trips) a task is its own Work Queue task`,
      "with resource_monitor: every task, batched or not, runs under its own resource_monitor, limited by its label and measured (the C manager: enable_monitoring())",
      "",
      formatTable(
        [
          "manager",
          "tasks",
          "tasks/s",
          "median round trip",
          "CPU/task: worker+tasks, manager",
          "CPU ceiling",
        ],
        rows,
      ),
      "",
    ];
    if (bundle !== undefined)
      lines.push(
        formatTable(
          [
            `${(bundle.bundleBytes / 1e6).toFixed(1)} MB bundle`,
            "bytes sent",
            "bundles sent",
            "tasks",
            "first result",
          ],
          bundle.workers.map((w, i) => [
            `worker ${i + 1}`,
            `${(w.bytesSent / 1e6).toFixed(1)} MB`,
            w.bundlesSent.toFixed(2),
            String(w.tasks),
            `${w.firstResultSeconds.toFixed(2)} s`,
          ]),
        ),
        "",
      );
    lines.push(formatTable(["ratio", "value", "target", "met"], ratios), "");
    if (warm !== undefined) lines.push(...formatWarmSection(warm), "");
    lines.push(
      `CPU/task: the CPU of the timed tasks (the worker with the task processes it reaped, from its /proc stat; the manager's process) over their number. CPU ceiling = ${cpus().length} cores × 1000 / that: the rate if nothing else ran here. With other work on the machine every process waits its turn for a core, and a task is a chain of such turns (fork, exit, wake-up, message), so tasks/s fall below the ceiling by an amount that depends on the load; CPU per task does not.`,
      "resource_monitor pauses 200 ms after its program exits unless a signal ends the pause (rmonitor_final_cleanup, seen with strace); envpack's wrapper signals it when the program's end of a FIFO closes, the C manager's tasks wait it out whenever they lose that race.",
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
