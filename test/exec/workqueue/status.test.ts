// Status answers of the Work Queue manager: the JSON the C manager sends for queue_status and its
// siblings, built from a snapshot, and read by Debian's own work_queue_status.

import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { execa } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import type { Resources } from "../../../src/core/index.js";
import {
  catalogRecord,
  queueStatus,
  tasksStatus,
  workersStatus,
  type QueueSnapshot,
  type WorkerSnapshot,
} from "../../../src/exec/workqueue/status.js";
import {
  parseStatusRequest,
  statusReply,
} from "../../../src/exec/workqueue/status-request.js";

const none: Resources = { cores: 0, memory: 0, disk: 0, gpus: 0 };

function worker(
  id: string,
  resources: Resources,
  inUse: Resources,
  running: WorkerSnapshot["running"] = [],
): WorkerSnapshot {
  return {
    id,
    hostname: `host-${id}`,
    os: "Linux",
    arch: "x86_64",
    address: `127.0.0.1:4000${id.length}`,
    resources,
    inUse,
    running,
    tasksDone: 7,
    bytesTransferred: 1234,
    transferMs: 5,
    joinedAt: 1_700_000_000_000,
  };
}

/** Two workers (4 and 2 cores), two tasks running on the big one, three waiting. */
function snapshot(): QueueSnapshot {
  return {
    project: "proj",
    host: "127.0.0.1",
    port: 9123,
    startedAt: 1_700_000_000_500,
    owner: "tester",
    workers: [
      worker(
        "w-big",
        { cores: 4, memory: 8000, disk: 10_000, gpus: 0 },
        { cores: 3, memory: 3000, disk: 100, gpus: 0 },
        [
          { id: 1, command: "sleep 1" },
          { id: 2, command: "sleep 2" },
        ],
      ),
      worker("w-small", { cores: 2, memory: 2000, disk: 5000, gpus: 0 }, none),
    ],
    tasks: [
      {
        id: 1,
        state: "running",
        category: "sleep",
        command: "sleep 1",
        resources: { cores: 1, memory: 1000, disk: 50, gpus: 0 },
        workerId: "w-big",
        submittedAt: 1_700_000_001_000,
        dispatchedAt: 1_700_000_001_100,
      },
      {
        id: 2,
        state: "retrieving",
        category: "sleep",
        command: "sleep 2",
        resources: { cores: 2, memory: 2000, disk: 50, gpus: 0 },
        workerId: "w-big",
        submittedAt: 1_700_000_001_000,
        dispatchedAt: 1_700_000_001_100,
      },
      ...[3, 4].map((id) => ({
        id,
        state: "waiting" as const,
        category: "sim",
        command: `sim ${id}`,
        resources: { cores: 3, memory: 4000 },
        submittedAt: 1_700_000_002_000,
      })),
      {
        id: 5,
        state: "waiting" as const,
        category: "sim",
        command: "sim 5",
        resources: {},
        submittedAt: 1_700_000_002_000,
      },
    ],
    totals: {
      submitted: 12,
      dispatched: 9,
      done: 6,
      failed: 1,
      cancelled: 0,
      workersJoined: 3,
      workersRemoved: 1,
      workersLost: 1,
      bytesSent: 4096,
      bytesReceived: 512,
    },
    categoryTotals: {
      sleep: { dispatched: 9, done: 6, failed: 1, cancelled: 0 },
    },
  };
}

describe("queue status", () => {
  it("counts tasks and workers as the C manager does (tasks_on_workers includes results not yet fetched)", () => {
    const status = queueStatus(snapshot());
    expect(status).toMatchObject({
      type: "wq_master",
      project: "proj",
      port: 9123,
      owner: "tester",
      starttime: 1_700_000_000,
      workers: 2,
      workers_connected: 2,
      workers_busy: 1,
      workers_idle: 1,
      tasks_waiting: 3,
      tasks_running: 1,
      tasks_with_results: 1,
      tasks_on_workers: 2,
      tasks_left: 0,
      tasks_submitted: 12,
      tasks_done: 6,
      tasks_complete: 6,
      tasks_failed: 1,
      workers_lost: 1,
      cores_total: 6,
      cores_inuse: 3,
      cores_smallest: 2,
      cores_largest: 4,
      memory_total: 10_000,
      workers_total: 2,
      workers_inuse: 1,
      // The largest waiting task (3 cores, 4000 MB) fits only the big worker.
      workers_able: 1,
      capacity_tasks: 10,
      capacity_cores: 10,
    });
  });

  it("adds what waiting tasks declare to what is in use for the factory's tasks_total_*", () => {
    const status = queueStatus(snapshot());
    expect(status.tasks_total_cores).toBe(3 + 3 + 3);
    expect(status.tasks_total_memory).toBe(4000 + 4000 + 3000);
    expect(status.tasks_total_disk).toBe(100);
  });

  it("estimates capacity from finished tasks' times as compute_capacity does", () => {
    const s = snapshot();
    s.reports = Array.from({ length: 4 }, () => ({
      execMs: 3000,
      transferMs: 10,
      managerMs: 10,
      resources: { cores: 2, memory: 100, disk: 10, gpus: 0 },
    }));
    const status = queueStatus(s);
    // 12000 ms of execution over 40 + 40 ms of overhead: 150 tasks; 2 cores each.
    expect(status.capacity_tasks).toBe(150);
    expect(status.capacity_cores).toBe(300);
    expect(status.capacity_instantaneous).toBe(150);
  });

  it("lists categories with their waiting and running tasks, then the whole queue", () => {
    const categories = queueStatus(snapshot()).categories as Record<
      string,
      unknown
    >[];
    expect(categories.map((c) => c.category)).toEqual([
      "sim",
      "sleep",
      "whole queue",
    ]);
    expect(categories[0]).toMatchObject({
      tasks_waiting: 3,
      tasks_on_workers: 0,
      max_cores: "3",
      max_memory: "4000 MB",
      workers_able: 1,
    });
    expect(categories[1]).toMatchObject({ tasks_on_workers: 2, tasks_done: 6 });
  });

  it("keeps the catalog record lean: what workers, status and factories read, no categories", () => {
    const record = catalogRecord(snapshot());
    expect(record).toMatchObject({
      type: "wq_master",
      project: "proj",
      port: 9123,
      tasks_waiting: 3,
      tasks_on_workers: 2,
      workers: 2,
      manager_preferred_connection: "by_ip",
    });
    expect(record).not.toHaveProperty("categories");
    expect(record).not.toHaveProperty("name");
    expect(JSON.stringify(record).length).toBeLessThan(1200);
  });

  it("describes tasks and workers as task_status and worker_status do", () => {
    const now = 1_700_000_009_000;
    const tasks = tasksStatus(snapshot(), now);
    expect(tasks).toHaveLength(5);
    expect(tasks[0]).toMatchObject({
      taskid: 1,
      state: "running",
      host: "host-w-big",
      address_port: "127.0.0.1:40005",
      cores: 1,
      current_time: now * 1000,
    });
    expect(tasks[4]).toMatchObject({
      taskid: 5,
      state: "WAITING",
      cores: -1,
      memory: -1,
    });
    const workers = workersStatus(snapshot(), now);
    expect(workers[0]).toMatchObject({
      worker_id: "w-big",
      hostname: "host-w-big",
      ncpus: 4,
      total_tasks_running: 2,
      cores_inuse: 3,
      cores_total: 4,
      current_task_000_id: 1,
      current_task_001_command: "sleep 2",
    });
  });
});

describe("status requests", () => {
  it("knows the five plain requests and HTTP GETs of them", () => {
    expect(parseStatusRequest("queue_status")).toEqual({
      kind: "queue_status",
      http: false,
    });
    expect(parseStatusRequest("GET /worker_status HTTP/1.1")).toEqual({
      kind: "worker_status",
      http: true,
    });
    expect(parseStatusRequest("GET / HTTP/1.0")).toEqual({
      kind: "index",
      http: true,
    });
    expect(parseStatusRequest("GET /nope HTTP/1.1")?.kind).toBe("not-found");
    for (const line of [
      "workqueue 9 vm Linux x86_64 8.0.0",
      "auth password sha1",
      "queue_status extra",
      "",
    ])
      expect(parseStatusRequest(line)).toBeUndefined();
  });

  it("answers HTTP with a response whose body is the JSON array", () => {
    const reply = statusReply({ kind: "queue_status", http: true }, snapshot());
    const [head, body] = reply.split("\r\n\r\n") as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expect((JSON.parse(body) as unknown[])[0]).toMatchObject({
      project: "proj",
    });
  });
});

describe("work_queue_status against the answers", () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server !== undefined)
      await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  /** A socket that answers one status line per connection, as the manager's port does. */
  async function serve(): Promise<number> {
    server = createServer((socket) => {
      let buffered = "";
      socket.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const end = buffered.indexOf("\n");
        if (end < 0) return;
        const request = parseStatusRequest(buffered.slice(0, end));
        if (request === undefined) socket.destroy();
        else socket.end(statusReply(request, snapshot()));
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error();
    return address.port;
  }

  it("reads the queue, its tasks and its workers in long (JSON) form", async () => {
    const port = await serve();
    const run = (flag?: string) =>
      execa(
        "work_queue_status",
        [...(flag ? [flag] : []), "-l", "127.0.0.1", String(port)],
        { timeout: 30_000 },
      );
    const queue = JSON.parse((await run()).stdout) as Record<string, unknown>[];
    expect(queue[0]).toMatchObject({
      project: "proj",
      tasks_waiting: 3,
      workers: 2,
    });
    const tasks = JSON.parse((await run("-T")).stdout) as unknown[];
    expect(tasks).toHaveLength(5);
    const workers = JSON.parse((await run("-W")).stdout) as unknown[];
    expect(workers).toHaveLength(2);
  });

  it("prints the queue table with the project, its waiting and running tasks and workers", async () => {
    const port = await serve();
    const { stdout } = await execa(
      "work_queue_status",
      ["127.0.0.1", String(port)],
      { timeout: 30_000 },
    );
    const [header, row] = stdout
      .trim()
      .split("\n")
      .map((line) => line.trim()) as [string, string];
    expect(header.split(/\s+/)).toEqual([
      "PROJECT",
      "HOST",
      "PORT",
      "WAITING",
      "RUNNING",
      "COMPLETE",
      "WORKERS",
    ]);
    expect(row.split(/\s+/)).toEqual([
      "proj",
      "127.0.0.1",
      "9123",
      "3",
      "1",
      "6",
      "2",
    ]);
  });
});
