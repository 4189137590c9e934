// Status answers on the manager's port, read by Debian's work_queue_status and acted on by
// work_queue_factory -T local, with real workers.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import type { TaskResult, TaskSpec } from "../../../src/core/index.js";
import type { WorkerInfo } from "../../../src/exec/index.js";
import { StatusService } from "../../../src/exec/workqueue/status-service.js";
import type { TaskSnapshot } from "../../../src/exec/workqueue/status.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { startWorker } from "../../helpers/wq-worker.js";
import { harness } from "./harness.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function waitingTask(id: number, command: string): TaskSnapshot {
  return {
    id,
    state: "waiting",
    category: "status-test",
    command,
    resources: { cores: 1 },
    submittedAt: Date.now(),
  };
}

async function statusJson(
  port: number,
  flag?: string,
): Promise<Record<string, unknown>[]> {
  const { stdout } = await execa(
    "work_queue_status",
    [...(flag === undefined ? [] : [flag]), "-l", "127.0.0.1", String(port)],
    { timeout: 30_000 },
  );
  return JSON.parse(stdout) as Record<string, unknown>[];
}

/** Pids of live processes whose argv contains `args` in order, consecutively. */
async function processesWith(args: string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = (await readFile(join("/proc", name, "cmdline"), "utf8"))
        .split("\0")
        .filter((a) => a !== "");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ESRCH") continue;
      throw error;
    }
    const at = argv.findIndex((a, i) =>
      args.every((want, j) => argv[i + j] === want),
    );
    if (at >= 0 && argv.some((a) => a.endsWith("work_queue_worker")))
      pids.push(Number(name));
  }
  return pids;
}

/** Waits (up to a minute) for these processes to end; returns those still alive. */
async function vanished(pids: number[]): Promise<number[]> {
  const alive = () =>
    pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
        throw error;
      }
    });
  for (let i = 0; i < 600 && alive().length > 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  return alive();
}

describe("StatusService's queue from the task engine", () => {
  it("shows the engine's waiting tasks and counters, and placed tasks on their workers", () => {
    const manager = {
      requests: new Map(),
      address: () => ({ host: "127.0.0.1", port: 9 }),
      snapshot: () => ({
        host: "127.0.0.1",
        port: 9,
        tasksRunning: 1,
        workers: [
          {
            id: "w1",
            hostname: "h",
            address: "127.0.0.1:5",
            os: "Linux",
            arch: "x86_64",
            resources: { cores: 4, memory: 4000, disk: 4000, gpus: 0 },
            tasksRunning: 1,
            tasksSent: 3,
            bytesSent: 100,
            puts: {},
          },
        ],
      }),
    };
    const status = new StatusService(manager);
    const spec = (id: string, payload: TaskSpec["payload"]): TaskSpec => ({
      id,
      category: "c",
      payload,
      resources: { cores: 2 },
      attempt: 0,
    });
    status.attach({
      waiting: () => [
        {
          spec: spec("t2", {
            kind: "module",
            module: "/app/tasks.js",
            exportName: "noop",
            args: [],
          }),
          submittedAt: 1,
        },
      ],
      counts: () => ({ submitted: 5, done: 2, failed: 1, canceled: 0 }),
    });
    const done = status.running(
      spec("t1", { kind: "command", argv: ["echo", "hi"] }),
      {
        workerId: "w1",
        label: { cores: 2, memory: 2000, disk: 2000, gpus: 0 },
      },
    );
    let snapshot = status.snapshot();
    expect(snapshot.tasks.map((t) => [t.id, t.state, t.command])).toEqual([
      ["t1", "running", "echo hi"],
      ["t2", "waiting", "noop() of tasks.js"],
    ]);
    expect(snapshot.workers[0]?.inUse.cores).toBe(2);
    expect(snapshot.totals).toMatchObject({ submitted: 5, done: 2, failed: 1 });
    done();
    snapshot = status.snapshot();
    expect(snapshot.tasks.map((t) => t.id)).toEqual(["t2"]);
    expect(snapshot.workers[0]?.inUse.cores).toBe(0);
  });
});

describe("StatusService on a real manager", () => {
  it("shows the queue, its tasks and its workers to work_queue_status and to a browser", async () => {
    const h = await harness();
    // A service of the test's own (its handlers replace the manager's): the queue it shows is
    // the test's, as a task engine would lend it.
    const status = new StatusService(h.backend);
    cleanup.push(() => status.stop());
    await status.start();
    await startWorker({ port: h.port, cores: 2, memory: 700, disk: 900 });
    const worker = await h.nextWorker();
    const running: TaskSnapshot = {
      ...waitingTask(1, "sleep 1"),
      state: "running",
      workerId: worker.id,
      resources: { cores: 1, memory: 100, disk: 100, gpus: 0 },
    };
    status.setQueue({
      tasks: () => [
        running,
        waitingTask(2, "echo 2"),
        waitingTask(3, "echo 3"),
      ],
      totals: () => ({ submitted: 3, dispatched: 1 }),
    });
    const sleeping = h.run({ kind: "command", shell: "sleep 1" }, worker);

    const [queue] = await statusJson(h.port);
    expect(queue).toMatchObject({
      type: "wq_master",
      port: h.port,
      tasks_waiting: 2,
      tasks_running: 1,
      tasks_on_workers: 1,
      tasks_submitted: 3,
      workers: 1,
      cores_total: 2,
      cores_inuse: 1,
      memory_total: 700,
    });
    const workers = await statusJson(h.port, "-W");
    expect(workers).toHaveLength(1);
    expect(workers[0]).toMatchObject({
      worker_id: worker.id,
      total_tasks_running: 1,
      cores_total: 2,
      current_task_000_command: "sleep 1",
    });
    const tasks = await statusJson(h.port, "-T");
    expect(tasks.map((t) => [t.taskid, t.state])).toEqual([
      [1, "running"],
      [2, "WAITING"],
      [3, "WAITING"],
    ]);
    const response = await fetch(`http://127.0.0.1:${h.port}/queue_status`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as unknown[])[0]).toMatchObject({
      tasks_waiting: 2,
    });
    expect(await sleeping).toMatchObject({ ok: true });
  });

  it("makes work_queue_factory -T local start workers for waiting tasks, and leaves none behind when stopped", async () => {
    const h = await harness();
    // A service of the test's own (its handlers replace the manager's): the queue it shows is
    // the test's, as a task engine would lend it.
    const status = new StatusService(h.backend);
    cleanup.push(() => status.stop());
    await status.start();
    // The task engine's part, by hand: four tasks wait; each worker that joins takes them one
    // at a time until none is left.
    const waiting = [1, 2, 3, 4].map((id) => waitingTask(id, `echo ${id}`));
    const placed: TaskSnapshot[] = [];
    status.setQueue({ tasks: () => [...placed, ...waiting] });
    const results: TaskResult[] = [];
    let allDone: () => void = () => {};
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const serve = async (worker: WorkerInfo) => {
      for (let task = waiting.shift(); task; task = waiting.shift()) {
        const mine = {
          ...task,
          state: "running" as const,
          workerId: worker.id,
        };
        placed.push(mine);
        const result = await h.run(
          { kind: "command", shell: `echo task ${task.id}` },
          worker,
        );
        placed.splice(placed.indexOf(mine), 1);
        results.push(result);
        if (results.length === 4) allDone();
      }
    };
    void (async () => {
      for (;;) void serve(await h.nextWorker());
    })();

    const scratch = await tempDir("envpack-factory-");
    const workdir = await tempDir("envpack-factory-workers-");
    const factory = spawn(
      "work_queue_factory",
      [
        "-T",
        "local",
        "--min-workers",
        "0",
        "--max-workers",
        "2",
        "--cores",
        "1",
        "--memory",
        "300",
        "--disk",
        "300",
        "--scratch-dir",
        scratch,
        // Its own status goes to a catalog; keep it on this machine (a closed port).
        "--catalog",
        "127.0.0.1:1",
        // Its workers leave after 10 s without a task or a manager (a stopped -T local factory
        // does not end them, nor does a manager that releases them).
        "--timeout",
        "10",
        "--extra-options",
        `--workdir ${workdir}`,
        "127.0.0.1",
        String(h.port),
      ],
      { stdio: "ignore" },
    );
    const factoryExited = once(factory, "exit");
    cleanup.push(async () => {
      if (factory.exitCode === null && factory.signalCode === null) {
        factory.kill("SIGKILL");
        await factoryExited;
      }
    });

    await finished;
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true]);
    expect(
      results.map((r) => (r.value as { stdout: string }).stdout).sort(),
    ).toEqual(["task 1\n", "task 2\n", "task 3\n", "task 4\n"]);
    const ranOn = new Set(results.map((r) => r.workerId));
    expect(ranOn.size).toBeGreaterThanOrEqual(1);
    expect(ranOn.size).toBeLessThanOrEqual(2);

    const started = await processesWith(["127.0.0.1", String(h.port)]);
    expect(started.length).toBeGreaterThanOrEqual(1);
    factory.kill("SIGTERM");
    await factoryExited;
    await h.backend.shutdown();
    expect(await vanished(started)).toEqual([]);
  });
});
