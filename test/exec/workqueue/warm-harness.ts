// What the warm-runtime tests share: an executor on a free port with its events, a poll, the pids
// of the warm runtimes running under a worker, and the autolabel scenarios both languages pass.

import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import type { EnvpackEvent } from "../../../src/core/index.js";
import { Executor, type WorkQueueExecutorOptions } from "../../../src/index.js";
import {
  processesUnder,
  startWorker,
  type TestWorker,
  type WorkerOptions,
} from "../../helpers/wq-worker.js";

type StateEvent = Extract<EnvpackEvent, { type: "task:state" }>;

/** Polls `check` until it returns a value, failing clearly after `ms`. */
export async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** An executor on a free port, its events and a wait for N workers to join. */
export async function manager(
  options: Partial<Omit<WorkQueueExecutorOptions, "backend" | "port">>,
) {
  const events: EnvpackEvent[] = [];
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    ...options,
    onEvent: (event) => events.push(event),
  });
  const { port } = await executor.listening();
  const joined = () =>
    events.flatMap((e) =>
      e.type === "debug"
        ? (/^worker (\S+) joined/.exec(e.message)?.[1] ?? [])
        : [],
    );
  return {
    executor,
    events,
    port: port as number,
    joined,
    /** Starts a worker and waits for it to join; returns it with its id. */
    async worker(
      cores: number,
      memory = 1000,
      more: Partial<WorkerOptions> = {},
    ) {
      const before = joined().length;
      const worker = await startWorker({
        port: port as number,
        cores,
        memory,
        ...more,
      });
      const id = await until(
        () => joined()[before],
        `worker ${worker.pid} to join`,
      );
      return { worker, id };
    },
    results(): Array<NonNullable<StateEvent["result"]>> {
      return events.flatMap((e) =>
        e.type === "task:state" && e.result !== undefined ? [e.result] : [],
      );
    },
  };
}

/**
 * The pids of the warm runtimes (`<interpreter> … --connect`) running under a worker's directory:
 * the interpreter itself, not the shells and the monitor that name it in their arguments.
 */
export async function runtimePids(
  worker: TestWorker,
  interpreter: RegExp = /(^|\/)node$/,
): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of await processesUnder(worker.dir)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT" || error.code === "ESRCH") return "";
        throw error;
      },
    );
    const argv = cmdline.split("\0");
    if (interpreter.test(argv[0] ?? "") && argv.includes("--connect"))
      pids.push(pid);
  }
  return pids;
}

type Manager = Awaited<ReturnType<typeof manager>>;
type Alloc = (mb: number, holdMs: number) => Promise<number>;

/**
 * Under autolabel, on a worker of 1000 MB: a 1 MB task sets the category's label (about one
 * runtime), then a 300 MB task held 3 s goes over it, is killed and runs again on a whole worker.
 */
export async function expectOverLabelRetried(
  m: Manager,
  alloc: Alloc,
): Promise<void> {
  expect(await alloc(1, 0)).toBe(1);
  expect(await alloc(300, 3000)).toBe(300);
  await m.executor.shutdown();
  expectRetriedLarger(m.results(), 1000);
}

/** One attempt ended over its memory label, and its task then ran to the end with `memory` MB. */
export function expectRetriedLarger(
  attempts: Array<NonNullable<StateEvent["result"]>>,
  memory: number,
): void {
  const over = attempts.find((r) => r.reason === "over-resources");
  expect(over).toMatchObject({ exceeded: "memory" });
  expect(over?.usage.peakMemory).toBeGreaterThan(over?.label.memory ?? 0);
  const retried = attempts.find(
    (r) => r.id === over?.id && r.attempt > (over?.attempt ?? 0),
  );
  expect(retried).toMatchObject({ ok: true });
  expect(retried?.label.memory).toBe(memory);
}

/**
 * Under autolabel, on a worker of 1000 MB: after one small task (the runtime's baseline), 50 tasks
 * of 30 MB in one runtime; each is measured from the runtime at rest (no peak counts an earlier
 * task's buffer), and the category's label stays within 20% of one task's peak plus the baseline.
 */
export async function expectSteadyLabel(
  m: Manager,
  small: () => Promise<unknown>,
  alloc: Alloc,
): Promise<void> {
  await small();
  const baseline = m.results()[0]?.usage.peakMemory ?? 0;
  expect(baseline).toBeGreaterThan(5);
  for (let i = 0; i < 50; i++) expect(await alloc(30, 0)).toBe(30);
  await m.executor.shutdown();
  const peaks = m
    .results()
    .filter((r) => r.ok && r.usage.peakMemory > baseline + 20)
    .map((r) => r.usage.peakMemory);
  expect(peaks).toHaveLength(50);
  // Not one task counts an earlier task's garbage: every peak after the first five stays there.
  const first = Math.min(...peaks.slice(0, 5));
  expect(
    Math.max(...peaks.slice(5)),
    `peaks ${peaks.map((p) => p.toFixed(1)).join(" ")}`,
  ).toBeLessThanOrEqual(first * 1.1);
  // The last tasks ran with the category's label, not on a whole worker.
  const last = m.results().at(-1);
  expect(last?.label.memory).toBeLessThan(1000);
  const label = m.executor.summary().find((c) => c.category === "alloc")
    ?.label?.memory;
  expect(label).toBeGreaterThanOrEqual(30);
  expect(label).toBeLessThanOrEqual(1.2 * (30 + baseline));
  expect(last?.label.memory).toBe(label);
}

/**
 * With maxRetries 1 and a 2-core worker: `block(dir)` hangs in a runtime (its pid in dir/pid-N)
 * while 50 `echo(i)` run beside it; that runtime is SIGKILLed. Only the blocked task fails (then
 * runs again in another runtime); every echo comes back, in order.
 */
export async function expectOnlyKilledTaskRetried(
  m: Manager,
  block: (dir: string) => Promise<number>,
  echo: (i: number) => Promise<{ i: number }>,
  dir: string,
): Promise<void> {
  const blocked = block(dir);
  const pidFile = await until(
    async () => (await readdir(dir)).find((n) => n.startsWith("pid-")),
    "the blocking task to start",
    60_000,
  );
  const victim = Number(pidFile.slice("pid-".length));
  const others = Array.from({ length: 50 }, (_, i) => echo(i));
  await writeFile(join(dir, "release"), "");
  process.kill(victim, "SIGKILL");
  expect(await blocked).not.toBe(victim);
  expect((await Promise.all(others)).map((r) => r.i)).toEqual(
    Array.from({ length: 50 }, (_, i) => i),
  );
  const attempts = m.results().filter((r) => r.reason !== "ok");
  expect(attempts).toHaveLength(1);
  expect(attempts[0]).toMatchObject({ reason: "signal", signal: "SIGKILL" });
}

/**
 * `n` calls at once of `echo(i)` through a 2-core worker's two 1-core slots: each result is its
 * call's, in order, and at most two runtimes (pids) served them all. Returns the results.
 */
export async function expectFewRuntimes<R extends { i: number; pid: number }>(
  echo: (i: number) => Promise<R>,
  n: number,
): Promise<{ results: R[]; pids: Set<number> }> {
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => echo(i)),
  );
  expect(results.map((r) => r.i)).toEqual(
    Array.from({ length: n }, (_, i) => i),
  );
  const pids = new Set(results.map((r) => r.pid));
  expect(pids.size).toBeGreaterThanOrEqual(1);
  expect(pids.size).toBeLessThanOrEqual(2);
  return { results, pids };
}
