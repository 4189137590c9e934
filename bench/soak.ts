// `npm run soak`: 10,000 tasks through the task engine on the local backend, with runtimes that
// crash, tasks over their memory label and random cancels through AbortSignals. Prints the tasks
// lost, the tasks settled twice, the processes left after shutdown (all three must be 0) and the
// run's tasks/s; exits 1 when any of the first three (or a task's outcome) is wrong.

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import type { EnvpackEvent, ResourceSpec, TaskResult } from "../src/index.js";
import { TaskEngine, openBackend, type EngineTask } from "../src/exec/index.js";
import { wantsJson } from "./lib/table.js";
import { seededRandom } from "./lib/seeded-random.js";

const TASKS = Number(process.env["SOAK_TASKS"] ?? 10_000);
const SEED = Number(process.env["SOAK_SEED"] ?? 7);
const CRASH_SHARE = 0.02;
const OVER_MEMORY_SHARE = 0.01;
const COMMAND_SHARE = 0.05;
const CANCEL_SHARE = 0.03;
/** Tasks submitted and not yet settled at any time: enough to queue, few enough to cancel running ones. */
const IN_FLIGHT = 48;
/** No task settling for this long means the rest never will: they are counted as lost. */
const STALL_MS = 120_000;
const WORKERS = [
  { id: "soak-a", cores: 2, memory: 3000 },
  { id: "soak-b", cores: 2, memory: 3000 },
];
const LABEL: ResourceSpec = { cores: 1, memory: 200 };
const OVER_MB = 600;

const TASK_MODULE = `
export async function work(ms, value) {
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  return value;
}
export async function crash(ms) {
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  process.exit(3);
}
export async function hog(mb) {
  const blocks = [];
  for (let i = 0; i < mb; i += 16) {
    blocks.push(Buffer.allocUnsafe(16 * 1048576).fill(1));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return blocks.length;
}
`;

type Kind = "work" | "command" | "crash" | "over-memory";

interface SoakTask {
  n: number;
  kind: Kind;
  /** A cancel this long after the task is submitted, or after it starts running. */
  cancel: { after: "submit" | "running"; ms: number } | undefined;
  /** The engine's id, read from its "queued" event during submit. */
  id: string | undefined;
  settled: number;
  outcome: string | undefined;
  wrong: string | undefined;
}

function plan(): SoakTask[] {
  const next = seededRandom(SEED);
  return Array.from({ length: TASKS }, (_, n) => {
    const r = next();
    const kind: Kind =
      r < CRASH_SHARE
        ? "crash"
        : r < CRASH_SHARE + OVER_MEMORY_SHARE
          ? "over-memory"
          : r < CRASH_SHARE + OVER_MEMORY_SHARE + COMMAND_SHARE
            ? "command"
            : "work";
    const cancel =
      next() < CANCEL_SHARE
        ? {
            after: next() < 0.5 ? ("submit" as const) : ("running" as const),
            ms: Math.floor(next() * 40),
          }
        : undefined;
    return {
      n,
      kind,
      cancel,
      id: undefined,
      settled: 0,
      outcome: undefined,
      wrong: undefined,
    };
  });
}

function engineTask(task: SoakTask, module: string): EngineTask {
  const base = { category: task.kind, resources: LABEL };
  const moduleCall = (exportName: string, args: unknown[]): EngineTask => ({
    ...base,
    name: `${task.kind}#${task.n}`,
    payload: { kind: "module", module, exportName, args },
  });
  switch (task.kind) {
    case "work":
      return moduleCall("work", [task.n % 7, task.n]);
    case "crash":
      return moduleCall("crash", [task.n % 3]);
    case "over-memory":
      return moduleCall("hog", [OVER_MB]);
    case "command":
      return {
        ...base,
        name: `command#${task.n}`,
        payload: { kind: "command", shell: `echo ${task.n}` },
      };
  }
}

/** Why an outcome is not one this task may end with; undefined when it may. */
function judge(task: SoakTask, result: TaskResult): string | undefined {
  // A cancel may land after the task ended by itself: then its own outcome stands.
  if (result.reason === "canceled")
    return task.cancel === undefined ? "canceled without a cancel" : undefined;
  switch (task.kind) {
    case "work":
      return result.ok && result.value === task.n
        ? undefined
        : `work ended ${result.reason} ${JSON.stringify(result.value)}`;
    case "command":
      return result.ok &&
        (result.value as { stdout?: string }).stdout === `${task.n}\n`
        ? undefined
        : `command ended ${result.reason}`;
    case "crash":
      return result.reason === "exit" && result.exitCode === 3
        ? undefined
        : `crash ended ${result.reason} ${result.exitCode}`;
    case "over-memory":
      return result.reason === "over-resources" && result.exceeded === "memory"
        ? undefined
        : `over-memory ended ${result.reason}`;
  }
}

/** Pids of `root`'s descendants and of any process whose cwd or command line names `dir`. */
function processesLeft(root: number, dir: string): string[] {
  const children = new Map<number, number[]>();
  const found = new Set<number>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === root) continue;
    let stat: string;
    let cmdline: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch (error) {
      // Gone while listed.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    let cwd = "";
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch (error) {
      // Another user's process, or gone: its command line still counts.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EACCES" && code !== "ENOENT") throw error;
    }
    if (cwd.startsWith(dir) || cmdline.includes(dir)) found.add(pid);
  }
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    found.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return [...found].map((pid) => {
    let cmdline = "?";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll(
        "\0",
        " ",
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    return `${pid} ${cmdline.trim()}`;
  });
}

async function main(): Promise<void> {
  const workDir = await mkdtemp(join(tmpdir(), "envpack-soak-"));
  const module = join(workDir, "soak-tasks.mjs");
  await writeFile(module, TASK_MODULE);
  const tasks = plan();
  /** Per engine id: final (done/failed) events minus retries: more than 1 is a second settle. */
  const finals = new Map<string, number>();
  let lastQueued: string | undefined;
  /** Per engine id, what to do when it starts running (its cancel). */
  const onRunning = new Map<string, () => void>();
  const onEvent = (e: EnvpackEvent) => {
    if (e.type !== "task:state") return;
    if (e.state === "queued") lastQueued = e.id;
    else if (e.state === "running") onRunning.get(e.id)?.();
    else if (e.state === "retry") finals.set(e.id, (finals.get(e.id) ?? 0) - 1);
    else if (e.state === "done" || e.state === "failed")
      finals.set(e.id, (finals.get(e.id) ?? 0) + 1);
  };
  const engine = new TaskEngine({
    backend: openBackend("local", { workDir, workers: WORKERS, onEvent }),
    maxRetries: 1,
    onEvent,
  });
  await engine.start();
  const started = performance.now();
  let lastSettled = started;
  let settledTasks = 0;
  let next = 0;
  let wakeUp: (() => void) | undefined;
  const settle = (task: SoakTask, outcome: string, wrong?: string) => {
    task.settled++;
    task.outcome = outcome;
    task.wrong = wrong;
    settledTasks++;
    lastSettled = performance.now();
    wakeUp?.();
  };
  const submit = (task: SoakTask) => {
    lastQueued = undefined;
    const controller = new AbortController();
    const pending = engine.submit(engineTask(task, module));
    task.id = lastQueued;
    if (task.id === undefined)
      throw new Error(`task ${task.n} was not queued at once`);
    const id = task.id;
    controller.signal.addEventListener("abort", () => engine.cancel(id), {
      once: true,
    });
    const { cancel } = task;
    if (cancel?.after === "submit")
      setTimeout(() => controller.abort(), cancel.ms);
    else if (cancel?.after === "running")
      onRunning.set(id, () => {
        onRunning.delete(id);
        setTimeout(() => controller.abort(), cancel.ms);
      });
    pending.then(
      (result) => settle(task, result.reason, judge(task, result)),
      (error: { code?: string }) =>
        settle(
          task,
          error.code ?? "error",
          error.code === "ENVPACK_TASK_CANCELED" && task.cancel !== undefined
            ? undefined
            : `rejected: ${String(error)}`,
        ),
    );
  };
  while (settledTasks < TASKS) {
    while (next < TASKS && next - settledTasks < IN_FLIGHT)
      submit(tasks[next++] as SoakTask);
    const progressed = new Promise<void>((resolve) => (wakeUp = resolve));
    await Promise.race([progressed, delay(1000)]);
    if (performance.now() - lastSettled > STALL_MS) break;
  }
  const seconds = (lastSettled - started) / 1000;
  const counts = engine.counts();
  await engine.close();
  const left = processesLeft(process.pid, workDir);
  await rm(workDir, { recursive: true, force: true });

  const lost = tasks.filter((t) => t.settled === 0);
  const twice = new Set(
    tasks
      .filter(
        (t) =>
          t.settled > 1 || (t.id !== undefined && (finals.get(t.id) ?? 0) > 1),
      )
      .map((t) => t.n),
  );
  const wrong = tasks.filter((t) => t.wrong !== undefined);
  const outcomes: Record<string, number> = {};
  for (const t of tasks)
    if (t.outcome !== undefined)
      outcomes[t.outcome] = (outcomes[t.outcome] ?? 0) + 1;
  const report = {
    tasks: TASKS,
    seed: SEED,
    planned: {
      crash: tasks.filter((t) => t.kind === "crash").length,
      overMemory: tasks.filter((t) => t.kind === "over-memory").length,
      command: tasks.filter((t) => t.kind === "command").length,
      canceled: tasks.filter((t) => t.cancel !== undefined).length,
    },
    outcomes,
    engineCounts: counts,
    tasksLost: lost.length,
    tasksSettledTwice: twice.size,
    processesLeft: left.length,
    wrongOutcomes: wrong.length,
    seconds,
    tasksPerSecond: TASKS / seconds,
  };
  if (wantsJson(process.argv))
    process.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    const lines = [
      `soak: ${TASKS} tasks on the local backend (seed ${SEED}), ${WORKERS.length} workers of 2 cores`,
      `  planned: ${report.planned.crash} crashing runtimes, ${report.planned.overMemory} over memory, ${report.planned.command} commands, ${report.planned.canceled} canceled`,
      `  outcomes: ${Object.entries(outcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
      `  tasks lost:          ${report.tasksLost} (target 0)`,
      `  tasks settled twice: ${report.tasksSettledTwice} (target 0)`,
      `  processes left:      ${report.processesLeft} (target 0)`,
      `  wrong outcomes:      ${report.wrongOutcomes} (target 0)`,
      `  throughput:          ${report.tasksPerSecond.toFixed(0)} tasks/s (${seconds.toFixed(1)} s)`,
    ];
    for (const t of lost.slice(0, 10))
      lines.push(`  lost: #${t.n} ${t.kind} ${t.id ?? ""}`);
    for (const t of wrong.slice(0, 10))
      lines.push(`  wrong: #${t.n} ${t.kind}: ${t.wrong}`);
    for (const p of left.slice(0, 10)) lines.push(`  left: ${p}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  if (lost.length + twice.size + left.length + wrong.length > 0)
    process.exitCode = 1;
}

await main();
