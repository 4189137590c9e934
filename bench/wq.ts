// `npm run bench:wq`: envpack's Work Queue manager driving real work_queue_workers on 127.0.0.1,
// against Debian's C manager (python3-workqueue) in the same run: no-op command tasks on one
// 2-core worker, pack: true module apps, a 40 MB bundle shipped to three workers, and warm
// runtimes on two workers (bench/wq-warm.ts; `--warm` runs that section alone). A failed task
// is counted and printed, never the end of the run.

import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { MAX_BATCH } from "../src/exec/index.js";
import { Executor } from "../src/index.js";
import { prepareApp, prepareConda } from "./lib/fixtures.js";
import { ratio } from "./lib/stats.js";
import { formatTable, ratioText, wantsJson } from "./lib/table.js";
import { formatWarmSection, runWarmSection } from "./wq-warm.js";
import {
  BUNDLE_BYTES,
  BUNDLE_WORKERS,
  runBundle,
  type BundleRun,
} from "./lib/wq-bundle.js";
import {
  C_PYTHON,
  runCManager,
  type CManagerRun,
  type Outcome,
  type Overhead,
} from "./lib/wq-cmanager.js";
import { runEnvpack, type Counts } from "./lib/wq-envpack.js";

/** `--tasks N` scales the runs down for a quick look (the figures of record use the defaults). */
const SCALE = scaleFromArgs(process.argv.slice(2));
/** `--warm`: only the warm-runtime section (bench/wq-warm.ts). */
const WARM_ONLY = process.argv.includes("--warm");
/** `--commands`: only the command tasks against the C manager (issue 12's figure). */
const COMMANDS_ONLY = process.argv.includes("--commands");
const COMMAND_TASKS = Math.round(2000 * SCALE);
/**
 * The monitored pair runs fewer tasks: every task there is a resource_monitor (~25–50 ms of CPU
 * each, ~10× an unmonitored one), and 2,000 on each side took minutes of the run.
 */
const MODULE_TASKS = Math.round(500 * SCALE);
const LATENCY_CALLS = Math.max(10, Math.round(200 * SCALE));
const COMMANDS: Counts = { tasks: COMMAND_TASKS, latencyCalls: LATENCY_CALLS };
const MONITORED: Counts = {
  tasks: Math.max(10, Math.round(500 * SCALE)),
  // A monitored round trip is ~200 ms (resource_monitor's start and end): 200 would be 40 s.
  latencyCalls: Math.max(10, Math.round(50 * SCALE)),
};
const WARMUP_TASKS = 20;
const WORKER = { cores: 2, memory: 1000, disk: 4000 };
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
function cRun(monitor: boolean, counts: Counts): CManagerRun {
  return {
    monitor,
    ...counts,
    warmup: WARMUP_TASKS,
    workers: 1,
    worker: WORKER,
  };
}

/** How long each section of the run took (wall seconds), in order. */
const sections: Array<{ name: string; seconds: number }> = [];

/** Runs one section, logging its start and recording how long it took. */
async function section<T>(name: string, step: () => Promise<T>): Promise<T> {
  log(`bench:wq: ${name}`);
  const start = performance.now();
  try {
    return await step();
  } finally {
    const seconds = (performance.now() - start) / 1000;
    sections.push({ name, seconds });
    log(`bench:wq:   ${seconds.toFixed(1)} s`);
  }
}

function cpuMs(cpu: NonNullable<Overhead["cpu"]>): number {
  return cpu.workerMs + cpu.managerMs;
}

function overheadRow(row: Outcome<Overhead>, label: string): string[] {
  if (!row.ok) return [label, "", "n/a", row.reason, "", "", ""];
  const { cpu } = row.value;
  return [
    label,
    String(row.value.tasks),
    row.value.tasksPerSecond.toFixed(0),
    `${row.value.medianLatencyMs.toFixed(2)} ms (${row.value.latencyCalls} calls)`,
    `${row.value.failed} + ${row.value.latencyFailed}`,
    cpu === undefined
      ? "n/a"
      : `${cpuMs(cpu).toFixed(1)} ms: ${cpu.workerMs.toFixed(1)} + ${cpu.managerMs.toFixed(1)}`,
    cpu === undefined
      ? "n/a"
      : `${((cpus().length * 1000) / cpuMs(cpu)).toFixed(0)} tasks/s`,
  ];
}

/** The first failure of each run that had one, as printed lines. */
function failureLines(runs: Array<[string, Outcome<Overhead>]>): string[] {
  return runs.flatMap(([label, run]) =>
    run.ok && run.value.firstFailure !== undefined
      ? [`failed tasks, ${label}: first: ${run.value.firstFailure}`]
      : [],
  );
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
    const commandRun = (monitor: boolean, counts: Counts) =>
      runEnvpack(
        `envpack command tasks, ${monitor ? "resource_monitor" : "monitor: false"}`,
        work,
        counts,
        noopCommand,
        { pack: false, monitor, warmup: WARMUP_TASKS, worker: WORKER },
      );
    const ok = (value: Overhead): Outcome<Overhead> => ({ ok: true, value });
    const what = (counts: Counts) =>
      `${counts.tasks} no-op commands + ${counts.latencyCalls} round trips`;
    // Each pair runs back to back (the C manager, then envpack): both see about the same load.
    const c = await section(`Debian's C manager, ${what(COMMANDS)}`, () =>
      runCManager(cRun(false, COMMANDS)),
    );
    const commands = ok(
      await section(`envpack's manager, ${what(COMMANDS)}`, () =>
        commandRun(false, COMMANDS),
      ),
    );
    const cMonitored = await section(
      `Debian's C manager with resource_monitor, ${what(MONITORED)}`,
      () => runCManager(cRun(true, MONITORED)),
    );
    const commandsMonitored = ok(
      await section(
        `envpack's manager with resource_monitor, ${what(MONITORED)}`,
        () => commandRun(true, MONITORED),
      ),
    );
    let modules: Outcome<Overhead> | undefined;
    let bundle: BundleRun | undefined;
    let warm: Awaited<ReturnType<typeof runWarmSection>> | undefined;
    if (!COMMANDS_ONLY) {
      modules = ok(
        await section(
          `envpack's manager, ${MODULE_TASKS} no-op pack: true module apps + ${LATENCY_CALLS} round trips`,
          () =>
            runEnvpack(
              "envpack module apps (pack: true)",
              work,
              { tasks: MODULE_TASKS, latencyCalls: LATENCY_CALLS },
              (executor) => {
                const noop = executor.app(noopEntry, "noop", {
                  resources: { cores: 1 },
                });
                return () => noop();
              },
              {
                pack: true,
                monitor: true,
                warmup: WARMUP_TASKS,
                worker: WORKER,
              },
            ),
        ),
      );
      bundle = await section(
        `a ${(BUNDLE_BYTES / 1e6).toFixed(0)} MB bundle on ${BUNDLE_WORKERS} workers`,
        () => runBundle(work, noopEntry),
      );
      const apps = await warmApps();
      warm = await section("warm runtimes on two workers", () =>
        runWarmSection(apps, SCALE, log),
      );
    }

    const both = <T>(
      a: Outcome<Overhead>,
      b: Outcome<Overhead>,
      f: (a: Overhead, b: Overhead) => T,
    ): T | null => (a.ok && b.ok ? f(a.value, b.value) : null);
    const vsC = both(commands, c, (e, c) =>
      ratio(e.tasksPerSecond, c.tasksPerSecond),
    );
    const latencyVsC = both(commands, c, (e, c) =>
      ratio(c.medianLatencyMs, e.medianLatencyMs),
    );
    const vsCMonitored = both(commandsMonitored, cMonitored, (e, c) =>
      ratio(e.tasksPerSecond, c.tasksPerSecond),
    );
    const cpuVsC = both(commands, c, (e, c) =>
      e.cpu === undefined || c.cpu === undefined
        ? null
        : ratio(cpuMs(c.cpu), cpuMs(e.cpu)),
    );
    const cpuVsCMonitored = both(commandsMonitored, cMonitored, (e, c) =>
      e.cpu === undefined || c.cpu === undefined
        ? null
        : ratio(cpuMs(e.cpu), cpuMs(c.cpu)),
    );
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
              commandsCpuPerTaskVsCMonitored: cpuVsCMonitored,
              cLatencyVsCommands: latencyVsC,
            },
            sections,
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
    const labelled: Array<[string, Outcome<Overhead>]> = [
      ["envpack: `true` commands, monitor: false", commands],
      [`Debian C manager (${C_PYTHON}): \`true\` commands`, c],
      [
        "envpack: `true` commands in resource_monitor (default)",
        commandsMonitored,
      ],
      ["Debian C manager, every task in resource_monitor", cMonitored],
    ];
    if (modules !== undefined)
      labelled.push([
        "envpack: no-op module apps, pack: true, warm runtimes (default; no C peer)",
        modules,
      ]);
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
      ["C manager / envpack median round trip", ratioText(latencyVsC), "", ""],
      [
        "envpack / C manager tasks/s (both in resource_monitor)",
        ratioText(vsCMonitored),
        `≥ ${TARGET_VS_C}`,
        met(vsCMonitored, (v) => v >= TARGET_VS_C),
      ],
      [
        "envpack / C manager CPU per task (both in resource_monitor)",
        ratioText(cpuVsCMonitored),
        "",
        "",
      ],
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
      `one work_queue_worker --cores ${WORKER.cores} --memory ${WORKER.memory} on 127.0.0.1; ${COMMAND_TASKS} tasks declaring 1 core, submitted at once after ${WARMUP_TASKS} untimed warm-up tasks, then ${LATENCY_CALLS} round trips one after another; the resource_monitor pair runs ${MONITORED.tasks} tasks and ${MONITORED.latencyCalls} round trips on each side (each monitored task costs ~10× the CPU of a bare one: 2,000 made the run minutes longer; CPU per task and the ratio do not depend on the count)`,
      `C manager: one Work Queue task per task, \`/bin/sh -c true\` (the worker forks, makes a sandbox, runs sh, reports; the manager fetches the result). envpack: command tasks of a category seen to run ≤ 1 s, placed on a worker beyond its slots, go out up to ${MAX_BATCH} to one Work Queue task whose shell runs each in a process of its own (a fork running \`true\`, sh's builtin as in \`/bin/sh -c true\`), in its own directory, with its own stdout, stderr and exit code streamed back as it ends; alone (the warm-up, the round trips) a task is its own Work Queue task`,
      "with resource_monitor: every task, batched or not, runs under its own resource_monitor, limited by its label and measured (the C manager: enable_monitoring())",
      "failed: tasks that did not succeed, of the timed ones + of the round trips (counted, not retried; tasks/s counts them as done)",
      "",
      formatTable(
        [
          "manager",
          "tasks",
          "tasks/s",
          "median round trip",
          "failed",
          "CPU/task: worker+tasks, manager",
          "CPU ceiling",
        ],
        labelled.map(([label, run]) => overheadRow(run, label)),
      ),
      ...failureLines(labelled),
      "",
    ];
    if (bundle !== undefined)
      lines.push(
        formatTable(
          [
            `${(bundle.bundleBytes / 1e6).toFixed(1)} MB bundle, pack: true`,
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
        `failed tasks: ${bundle.failed} of ${bundle.tasks}${bundle.firstFailure === undefined ? "" : `; first: ${bundle.firstFailure}`}`,
        "",
      );
    lines.push(formatTable(["ratio", "value", "target", "met"], ratios), "");
    if (warm !== undefined) lines.push(...formatWarmSection(warm), "");
    lines.push(
      formatTable(
        ["section", "wall time"],
        [
          ...sections.map((s) => [s.name, `${s.seconds.toFixed(1)} s`]),
          [
            "all",
            `${sections.reduce((n, s) => n + s.seconds, 0).toFixed(1)} s`,
          ],
        ],
      ),
      "",
      `CPU/task: the CPU of the timed tasks (the worker with the task processes it reaped, from its /proc stat; the manager's process) over their number. CPU ceiling = ${cpus().length} cores × 1000 / that: the rate if nothing else ran here. With other work on the machine every process waits its turn for a core, and a task is a chain of such turns (fork, exit, wake-up, message), so tasks/s fall below the ceiling by an amount that depends on the load; CPU per task does not.`,
      "resource_monitor pauses 200 ms after its program exits unless a signal ends the pause (rmonitor_final_cleanup, seen with strace); envpack's wrapper signals it when the program's end of a FIFO closes, the C manager's tasks wait it out whenever they lose that race.",
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
