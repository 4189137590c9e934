// Status answers on the manager's port, read by Debian's work_queue_status and acted on by
// work_queue_factory -T local, with real workers.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import type { TaskSpec } from "../../../src/core/index.js";
import { Executor } from "../../../src/index.js";
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

  it("shows an Executor's waiting calls, and work_queue_factory -T local starts workers that run them and leave after", async () => {
    const executor = new Executor({
      backend: "workqueue",
      port: 0,
      cacheDir: await tempDir(),
    });
    cleanup.push(() => executor.shutdown({ cancel: true }));
    const { port } = (await executor.listening()) as { port: number };
    // (work_queue_status escapes a "$" in its JSON output as "\$", which no JSON parser takes.)
    const echo = executor.command(["echo", "task"], {
      resources: { cores: 1 },
    });
    const calls = ["1", "2", "3", "4"].map((n) => echo(n));
    // Calls become tasks asynchronously: wait until the engine holds all four.
    for (;;) {
      const [queue] = await statusJson(port);
      if (queue?.tasks_waiting === 4) break;
    }
    const [queue] = await statusJson(port);
    expect(queue).toMatchObject({
      tasks_waiting: 4,
      tasks_on_workers: 0,
      tasks_submitted: 4,
      workers: 0,
      tasks_total_cores: 4,
    });
    const tasks = await statusJson(port, "-T");
    expect(tasks.map((t) => [t.state, t.command, t.cores])).toEqual(
      ["1", "2", "3", "4"].map((n) => ["WAITING", `echo task ${n}`, 1]),
    );

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
        String(port),
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

    const results = await Promise.all(calls);
    expect(results.map((r) => r.stdout)).toEqual(
      ["1", "2", "3", "4"].map((n) => `task ${n}\n`),
    );
    const started = await processesWith(["127.0.0.1", String(port)]);
    expect(started.length).toBeGreaterThanOrEqual(1);
    expect(started.length).toBeLessThanOrEqual(2);
    factory.kill("SIGTERM");
    await factoryExited;
    await executor.shutdown();
    expect(await vanished(started)).toEqual([]);
  });
});
