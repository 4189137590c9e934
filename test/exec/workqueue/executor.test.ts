// new Executor({ backend: "workqueue" }) end to end with real work_queue_worker processes: packing
// on workers of different sizes, a worker killed mid-run, an over-memory task under autolabel.

import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Executor, type ExecutorOptions } from "../../../src/index.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { startWorker, type TestWorker } from "../../helpers/wq-worker.js";
import { manager, type StateEvent } from "./executor-harness.js";
import { expectRetriedLarger } from "./warm-harness.js";

/** A task's tag, start and end (ns), as it printed them. */
function printed(stdout: string): { tag: string; span: [number, number] } {
  const [tag, start, end] = stdout.trim().split("\n");
  return { tag: tag as string, span: [Number(start), Number(end)] };
}

describe("Executor on Work Queue workers", () => {
  it("packs 1-core, 2-core and unlabelled tasks on two workers of different sizes as their specs allow", async () => {
    const m = await manager();
    try {
      await startWorker({ port: m.port, cores: 2, memory: 1000 });
      await startWorker({ port: m.port, cores: 1, memory: 500 });
      await m.workers(2);
      const timed = (tag: string) =>
        `echo ${tag}; date +%s%N; sleep 0.6; date +%s%N`;
      const one = m.executor.command(timed("one"), {
        resources: { cores: 1 },
      });
      const two = m.executor.command(timed("two"), {
        resources: { cores: 2 },
      });
      const whole = m.executor.command(timed("whole"));
      const calls = [
        one(),
        two(),
        whole(),
        one(),
        one(),
        two(),
        whole(),
        one(),
      ];
      for (const result of await Promise.all(calls))
        expect(result.exitCode).toBe(0);
    } finally {
      await m.executor.shutdown();
    }
    const runs = m
      .results()
      .filter((e) => e.state === "done")
      .map((e) => {
        // Told by the app, not by the label: a 1-core task on the 2-core,
        // 1000 MB worker is labelled 500 MB, as much as the whole small worker.
        const { tag, span } = printed(
          (e.result.value as { stdout: string }).stdout,
        );
        return {
          worker: e.result.workerId,
          cores: e.result.label.cores,
          whole: tag === "whole",
          span,
        };
      });
    expect(runs).toHaveLength(8);
    const size = new Map<string, number>();
    for (const run of runs)
      size.set(run.worker, Math.max(size.get(run.worker) ?? 0, run.cores));
    const [big] = [...size].find(([, cores]) => cores === 2) ?? [];
    expect(big).toBeDefined();
    // 2-core tasks ran on the 2-core worker.
    for (const run of runs.filter((r) => r.cores === 2 && !r.whole))
      expect(run.worker).toBe(big);
    let overlapped = false;
    for (const run of runs) {
      // What ran on its worker when it started, by the tasks' own clocks.
      const there = runs.filter(
        (r) =>
          r.worker === run.worker &&
          r.span[0] <= run.span[0] &&
          run.span[0] < r.span[1],
      );
      const cores = there.reduce((n, r) => n + r.cores, 0);
      expect(cores).toBeLessThanOrEqual(size.get(run.worker) as number);
      if (run.whole) expect(there).toEqual([run]);
      if (
        runs.some(
          (r) =>
            r !== run && r.span[0] < run.span[1] && run.span[0] < r.span[1],
        )
      )
        overlapped = true;
    }
    expect(overlapped).toBe(true);
  });

  it("loses no task when a worker is killed with SIGKILL mid-run", async () => {
    const m = await manager();
    try {
      // Started one after the other: the n-th to join is the n-th started.
      const started = new Map<string, TestWorker>();
      for (const n of [1, 2]) {
        const worker = await startWorker({ port: m.port, cores: 2 });
        await m.workers(n);
        started.set(m.joinedIds()[n - 1] as string, worker);
      }
      const app = m.executor.command("sleep 1; echo ok", {
        resources: { cores: 1 },
      });
      const calls = Array.from({ length: 6 }, () => app());
      // Kill a worker once it runs two of them.
      const runningOn = () => {
        const count = new Map<string, number>();
        for (const e of m.events)
          if (e.type === "task:state" && e.state === "running" && e.workerId)
            count.set(e.workerId, (count.get(e.workerId) ?? 0) + 1);
        return count;
      };
      while (![...runningOn().values()].some((n) => n >= 2))
        await once(m.bus, "state");
      const [victim] = [...runningOn()].find(([, n]) => n >= 2) ?? [];
      process.kill(
        (started.get(victim as string) as TestWorker).pid,
        "SIGKILL",
      );
      for (const result of await Promise.all(calls))
        expect(result).toEqual({ exitCode: 0, stdout: "ok\n" });
    } finally {
      await m.executor.shutdown();
    }
    const lost = m.results().filter((e) => e.result.reason === "worker-lost");
    expect(lost.length).toBeGreaterThan(0);
  });

  it("runs a task whose resource_monitor dies under it again, and fails it at the third such death", async () => {
    const dir = await tempDir("envpack-wq-monitor-");
    const m = await manager();
    try {
      await startWorker({ port: m.port, cores: 1 });
      await m.workers(1);
      // The program's parent is the monitor, which does not catch SIGSEGV.
      const killMonitor = "kill -SEGV $PPID; exec sleep 30";
      const once = m.executor.command(
        `if [ -e ${dir}/ran ]; then echo again; else : >${dir}/ran; ${killMonitor}; fi`,
      );
      expect(await once()).toEqual({ exitCode: 0, stdout: "again\n" });
      const always = m.executor.command(killMonitor);
      await expect(always()).rejects.toMatchObject({
        code: "ENVPACK_TASK_FAILED",
        message: expect.stringContaining(
          "MonitorFailed: resource_monitor died of SIGSEGV on the worker before it wrote its summary, attempt 3 of 3",
        ),
      });
    } finally {
      await m.executor.shutdown();
    }
    expect(m.results().map((e) => [e.result.reason, e.result.attempt])).toEqual(
      [
        ["worker-lost", 0],
        ["ok", 1],
        ["worker-lost", 0],
        ["worker-lost", 1],
        ["exit", 2],
      ],
    );
  });

  it("queues a task on a busy worker, and runs it elsewhere (not a failed attempt) when that worker dies", async () => {
    const dir = await tempDir("envpack-wq-queued-");
    const flag = join(dir, "flag");
    const m = await manager();
    try {
      const first = await startWorker({ port: m.port, cores: 1 });
      await m.workers(1);
      const a = m.joinedIds()[0];
      // The first attempt of "long" waits a minute; once the flag exists it ends at once.
      const long = m.executor.command(`[ -e ${flag} ] || sleep 60; echo long`, {
        resources: { cores: 1 },
      });
      const short = m.executor.command("echo short", {
        resources: { cores: 1 },
      });
      const calls = [long(), short()];
      // Both placed on the 1-core worker: one runs, one waits in the worker's queue.
      const placed = () =>
        m.events.filter(
          (e) => e.type === "task:state" && e.state === "running",
        ) as StateEvent[];
      // Placing follows queueing at once: both are placed once both are queued.
      const queued = () =>
        m.events.filter((e) => e.type === "task:state" && e.state === "queued")
          .length;
      while (queued() < 2) await once(m.bus, "state");
      expect(placed().map((e) => e.workerId)).toEqual([a, a]);
      await writeFile(flag, "");
      process.kill(first.pid, "SIGKILL");
      await startWorker({ port: m.port, cores: 1 });
      expect((await Promise.all(calls)).map((r) => r.stdout)).toEqual([
        "long\n",
        "short\n",
      ]);
    } finally {
      await m.executor.shutdown();
    }
    const [a, b] = m.joinedIds();
    const attempts = m.results().map((e) => e.result);
    // Each ran once on the first worker (lost, not failed), then on the second.
    expect(
      attempts.map((r) => [
        r.workerId === a ? "a" : r.workerId === b ? "b" : "?",
        r.reason,
        r.attempt,
      ]),
    ).toEqual(
      expect.arrayContaining([
        ["a", "worker-lost", 0],
        ["a", "worker-lost", 0],
        ["b", "ok", 1],
        ["b", "ok", 1],
      ]),
    );
    expect(attempts).toHaveLength(4);
  });

  it("refuses a bad keepaliveMs, and Work Queue options on the local backend", () => {
    expect(
      () => new Executor({ backend: "workqueue", port: 0, keepaliveMs: 0 }),
    ).toThrow(expect.objectContaining({ code: "ENVPACK_USAGE_BAD_CONFIG" }));
    expect(() => new Executor({ monitor: false } as ExecutorOptions)).toThrow(
      expect.objectContaining({
        code: "ENVPACK_USAGE_BAD_CONFIG",
        message: expect.stringMatching(/monitor is not an option/),
      }),
    );
  });

  it("runs tasks without resource_monitor with monitor: false, as the task's own process tree shows", async () => {
    // Each task prints the names of its ancestors, up to init.
    const ancestry =
      'p=$$; while [ "$p" -gt 1 ]; do cat /proc/$p/comm; read -r _ _ _ p _ </proc/$p/stat; done';
    const trees: Record<string, string> = {};
    for (const monitor of [false, true]) {
      const m = await manager({ monitor });
      try {
        await startWorker({ port: m.port, cores: 1 });
        await m.workers(1);
        const { stdout } = await m.executor.command(ancestry)();
        trees[String(monitor)] = stdout;
      } finally {
        await m.executor.shutdown();
      }
      expect(m.events).not.toContainEqual(
        expect.objectContaining({ code: "ENVPACK_WARN_WQ_UNMONITORED" }),
      );
    }
    // Both reach the worker; only the default one passes through resource_monitor.
    expect(trees["false"]).toMatch(/^work_queue_work/m);
    expect(trees["false"]).not.toMatch(/resource_moni/);
    expect(trees["true"]).toMatch(/^work_queue_work/m);
    expect(trees["true"]).toMatch(/resource_moni/);
  });

  it("kills a task over its autolabel memory label with resource_monitor and runs it again on a whole worker", async () => {
    const m = await manager({ autolabel: true });
    try {
      await startWorker({ port: m.port, cores: 2, memory: 1000 });
      await m.workers(1);
      const alloc = m.executor.command(
        `python3 -c "import time; b=bytearray($1<<20); b[::4096]=b'x'*len(b[::4096]); time.sleep(2)"`,
        { name: "alloc" },
      );
      // Measured on the whole worker: the category's label is about a small python.
      expect((await alloc("5")).exitCode).toBe(0);
      expect((await alloc("300")).exitCode).toBe(0);
    } finally {
      await m.executor.shutdown();
    }
    expectRetriedLarger(
      m.results().map((e) => e.result),
      1000,
    );
  });
});
