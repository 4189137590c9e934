// The Executor with the real local backend: real child processes that sleep, allocate, spin,
// write disk, throw and crash. Concurrency is read from the tasks' own start and end times.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import {
  Executor,
  type EnvpackEvent,
  type TaskResult,
} from "../../src/index.js";
import { tempDir } from "../helpers/temp-dir.js";

const tasks = () => {
  const app = inject("fixtures").apps["exec-tasks"];
  if (app === undefined)
    throw new Error("the exec-tasks fixture app was not installed");
  return { ts: join(app, "src", "tasks.ts"), py: join(app, "src", "tasks.py") };
};

/** A JS module whose task reports when it ran: [start ms, end ms, pid]. */
async function spanModule(): Promise<string> {
  const file = join(await tempDir(), "span.mjs");
  await writeFile(
    file,
    "export async function span(ms) { const start = Date.now(); await new Promise((r) => setTimeout(r, ms)); return [start, Date.now(), process.pid]; }\n",
  );
  return file;
}

/** A JS module whose task burns a fixed amount of CPU in `threads` worker threads. */
async function burnModule(): Promise<string> {
  const file = join(await tempDir(), "burn.mjs");
  await writeFile(
    file,
    [
      'import { Worker } from "node:worker_threads";',
      'const code = `const { workerData, parentPort } = require("node:worker_threads"); let x = 0; for (let i = 0; i < workerData; i++) x = (x * 31 + i) % 1000003; parentPort.postMessage(x);`;',
      "export async function burn(threads, n) {",
      '  await Promise.all(Array.from({ length: threads }, () => new Promise((resolve, reject) => { const w = new Worker(code, { eval: true, workerData: n }); w.once("message", resolve); w.once("error", reject); })));',
      "  return threads;",
      "}",
    ].join("\n"),
  );
  return file;
}

/** The most intervals open at one instant. */
function maxOverlap(spans: Array<[number, number]>): number {
  const points = spans.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ]);
  points.sort(
    (a, b) =>
      (a[0] as number) - (b[0] as number) ||
      (a[1] as number) - (b[1] as number),
  );
  let open = 0;
  let most = 0;
  for (const [, d] of points) most = Math.max(most, (open += d as number));
  return most;
}

function caught(
  promise: Promise<unknown>,
): Promise<{ code?: string; message: string; result?: TaskResult }> {
  return promise.then(
    () => {
      throw new Error("expected the task to fail");
    },
    (error: unknown) =>
      error as { code?: string; message: string; result?: TaskResult },
  );
}

describe("Executor (local backend)", () => {
  it("runs as many tasks at once as the resources allow on a 4-core worker", async () => {
    const ex = new Executor({
      workers: [{ cores: 4, memory: 4000 }],
      workDir: await tempDir(),
    });
    try {
      const span = ex.app<[number], [number, number, number]>(
        await spanModule(),
        "span",
      );
      const overlap = async (resources: { cores?: number }) =>
        maxOverlap(
          (
            await Promise.all(
              Array.from({ length: 8 }, () => span.with({ resources })(300)),
            )
          ).map(([s, e]) => [s, e] as [number, number]),
        );
      expect(await overlap({ cores: 1 })).toBe(4);
      expect(await overlap({ cores: 2 })).toBe(2);
      expect(await overlap({})).toBe(1);
    } finally {
      await ex.shutdown();
    }
  });

  it("packs heterogeneous workers to their sizes and fails a task no worker can hold at once", async () => {
    const events: EnvpackEvent[] = [];
    const ex = new Executor({
      workers: [
        { id: "big", cores: 4 },
        { id: "small", cores: 2 },
      ],
      workDir: await tempDir(),
      onEvent: (e) => events.push(e),
    });
    try {
      const span = ex.app<[number], [number, number, number]>(
        await spanModule(),
        "span",
        {
          resources: { cores: 1 },
        },
      );
      const spans = await Promise.all(
        Array.from({ length: 12 }, () => span(300)),
      );
      const byWorker = new Map<string, Array<[number, number]>>();
      for (const e of events)
        if (e.type === "task:state" && e.state === "done" && e.result) {
          const [s, end] = e.result.value as [number, number];
          byWorker.set(e.result.workerId, [
            ...(byWorker.get(e.result.workerId) ?? []),
            [s, end],
          ]);
        }
      expect(spans).toHaveLength(12);
      expect(maxOverlap(byWorker.get("big") ?? [])).toBe(4);
      expect(maxOverlap(byWorker.get("small") ?? [])).toBe(2);

      const started = Date.now();
      const error = await caught(span.with({ resources: { cores: 8 } })(10));
      expect(error.code).toBe("ENVPACK_TASK_TOO_LARGE");
      expect(error.message).toContain("big");
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await ex.shutdown();
    }
  });

  it("refuses bad resources and non-JSON arguments at the call", async () => {
    const ex = new Executor({
      workers: [{ cores: 1 }],
      workDir: await tempDir(),
    });
    try {
      expect(() =>
        ex.app(tasks().ts, "noop", { resources: { cpus: 1 } as never }),
      ).toThrow(
        expect.objectContaining({ code: "ENVPACK_USAGE_BAD_RESOURCES" }),
      );
      const echo = ex.app(tasks().ts, "echo");
      expect(() => echo.with({ resources: { memory: -5 } })).toThrow(
        expect.objectContaining({ code: "ENVPACK_USAGE_BAD_RESOURCES" }),
      );
      await expect(echo(new Map())).rejects.toMatchObject({
        code: "ENVPACK_USAGE_BAD_ARGUMENT",
      });
      expect(await echo({ a: [1, "x", null] })).toEqual({ a: [1, "x", null] });
    } finally {
      await ex.shutdown();
    }
  });

  it("reuses warm runtimes, reports an app's error with its remote stack, and survives a crash", async () => {
    const events: EnvpackEvent[] = [];
    const ex = new Executor({
      workers: [{ cores: 1 }],
      workDir: await tempDir(),
      maxRetries: 1,
      onEvent: (e) => events.push(e),
    });
    try {
      const info = ex.app<[], { pid: number; execPath: string }>(
        tasks().ts,
        "runtimeInfo",
      );
      const first = await info();
      expect((await info()).pid).toBe(first.pid);
      expect(first.execPath).toBe(process.execPath);

      const failed = await caught(ex.app(tasks().ts, "fail")("boom"));
      expect(failed.code).toBe("ENVPACK_TASK_FAILED");
      expect(failed.result?.error).toMatchObject({
        name: "Error",
        message: "boom",
      });
      expect(failed.result?.error?.stack).toContain("fail");

      const crashed = await caught(ex.app(tasks().ts, "crash")());
      expect(crashed.code).toBe("ENVPACK_TASK_FAILED");
      expect(crashed.result).toMatchObject({
        reason: "exit",
        exitCode: 3,
        attempt: 1,
      });
      const runs = events.filter(
        (e) =>
          e.type === "task:state" &&
          e.state === "running" &&
          e.id === crashed.result?.id,
      );
      expect(runs).toHaveLength(2);
      // A new runtime took the crashed one's place.
      expect((await info()).pid).not.toBe(first.pid);
    } finally {
      await ex.shutdown();
    }
  });

  it("measures memory, cores and disk, and kills a task over its label", async () => {
    const ex = new Executor({
      workers: [{ cores: 2, memory: 4000 }],
      workDir: await tempDir(),
    });
    const results: TaskResult[] = [];
    try {
      const alloc = ex.app<[number, number], number>(tasks().ts, "alloc");
      expect(await alloc(200, 300)).toBe(200);

      const over = await caught(
        alloc.with({ resources: { cores: 1, memory: 150 } })(400, 1000),
      );
      expect(over.code).toBe("ENVPACK_TASK_OVER_RESOURCES");
      expect(over.result).toMatchObject({
        reason: "over-resources",
        exceeded: "memory",
      });

      const disk = ex.command(
        "for i in 1 2 3 4 5 6 7 8 9 10; do head -c 10000000 /dev/zero >> f; sleep 0.1; done",
        {
          resources: { cores: 1, disk: 30 },
        },
      );
      const [spun, diskError] = await Promise.all([
        (async () => {
          const ex2 = new Executor({
            workers: [{ cores: 2 }],
            workDir: await tempDir(),
            onEvent: (e) => {
              if (e.type === "task:state" && e.result) results.push(e.result);
            },
          });
          try {
            const burn = ex2.app<[number, number], number>(
              await burnModule(),
              "burn",
            );
            await burn(1, 300_000_000);
            return await burn(2, 300_000_000);
          } finally {
            await ex2.shutdown();
          }
        })(),
        caught(disk()),
      ]);
      expect(spun).toBe(2);
      // Fixed work, so CPU time does not depend on what else the machine runs: two threads of it
      // cost about twice one thread's; cores = CPU time / wall time.
      const [one, two] = results.map((r) => r.usage);
      expect(two?.cpuMs).toBeGreaterThan((one?.cpuMs ?? 0) * 1.5);
      expect(two?.cpuMs).toBeLessThan((one?.cpuMs ?? 0) * 2.6);
      expect(two?.cores).toBeCloseTo((two?.cpuMs ?? 0) / (two?.wallMs ?? 1), 5);
      expect(diskError.code).toBe("ENVPACK_TASK_OVER_RESOURCES");
      expect(diskError.result).toMatchObject({ exceeded: "disk" });
    } finally {
      await ex.shutdown();
    }
  });

  it("autolabel: measures on a whole worker, labels from the peak, and retries a task over its label larger", async () => {
    const events: EnvpackEvent[] = [];
    const ex = new Executor({
      workers: [{ cores: 2, memory: 3000 }],
      workDir: await tempDir(),
      autolabel: true,
      autolabelWindow: 2,
      onEvent: (e) => events.push(e),
    });
    try {
      const alloc = ex.app<[number, number], number>(tasks().ts, "alloc");
      await alloc(100, 200);
      await alloc(100, 200);
      const [summary] = ex.summary();
      const peak = summary?.peaks.memory ?? 0;
      expect(peak).toBeGreaterThan(100);
      expect(summary?.label?.memory).toBeGreaterThanOrEqual(peak);
      expect(summary?.label?.memory).toBeLessThanOrEqual(Math.ceil(peak * 1.1));
      expect(events.some((e) => e.type === "label:chosen")).toBe(true);

      // Far over the label: killed, then run again on the whole worker, where it fits.
      expect(await alloc(500, 600)).toBe(500);
      const states = events.flatMap((e) =>
        e.type === "task:state" && e.result
          ? [[e.state, e.result.reason, e.result.label.memory]]
          : [],
      );
      expect(states.slice(-2)).toEqual([
        ["failed", "over-resources", summary?.label?.memory],
        ["done", "ok", 3000],
      ]);
      expect(ex.summary()[0]?.overLabel).toBe(1);
    } finally {
      await ex.shutdown();
    }
  });

  it("cancels running tasks through the signal, and shutdown leaves no process behind", async () => {
    const controller = new AbortController();
    const ex = new Executor({
      workers: [{ cores: 2 }],
      workDir: await tempDir(),
      signal: controller.signal,
    });
    const info = ex.app<[], { pid: number }>(tasks().ts, "runtimeInfo", {
      resources: { cores: 1 },
    });
    const pids = (await Promise.all([info(), info()])).map((r) => r.pid);
    const sleeping = ex.app<[number], number>(tasks().ts, "sleep", {
      resources: { cores: 1 },
    })(60_000);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    controller.abort();
    const error = await caught(sleeping);
    expect(error.code).toBe("ENVPACK_TASK_CANCELED");
    expect(Date.now() - started).toBeLessThan(10_000);
    await ex.shutdown();
    for (const pid of pids)
      expect(() => process.kill(pid, 0)).toThrow(
        expect.objectContaining({ code: "ESRCH" }),
      );
  });

  it("runs command apps and Python apps", async () => {
    const ex = new Executor({
      workers: [{ cores: 2 }],
      workDir: await tempDir(),
    });
    try {
      expect(await ex.command("echo $1-$2")("a", "b")).toEqual({
        exitCode: 0,
        stdout: "a-b\n",
      });
      expect(await ex.command(["printf", "%s"])("x")).toEqual({
        exitCode: 0,
        stdout: "x",
      });
      const failed = await caught(ex.command("echo oops >&2; exit 4")());
      expect(failed.result).toMatchObject({
        reason: "exit",
        exitCode: 4,
        stderrTail: "oops",
      });
      const echo = ex.pythonApp<[unknown], unknown>(tasks().py, "echo");
      expect(await echo({ n: [1, 2] })).toEqual({ n: [1, 2] });
    } finally {
      await ex.shutdown();
    }
  });
});
