// Catalog advertisement: the update Debian's catalog_server 9.9 records, and a work_queue_worker
// started with -M PROJECT finding the advertised port through it.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { EnvpackEvent } from "../../src/core/index.js";
import {
  CatalogAdvertiser,
  checkProject,
  parseCatalog,
} from "../../src/exec/workqueue/catalog.js";
import type { QueueSnapshot } from "../../src/exec/workqueue/status.js";
import {
  startCatalogServer,
  type CatalogServer,
} from "../helpers/catalog-server.js";
import { tempDir } from "../helpers/temp-dir.js";

function snapshot(project: string, port: number): QueueSnapshot {
  return {
    project,
    host: "127.0.0.1",
    port,
    startedAt: Date.now(),
    workers: [],
    tasks: [],
    totals: {
      submitted: 0,
      dispatched: 0,
      done: 0,
      failed: 0,
      cancelled: 0,
      workersJoined: 0,
      workersRemoved: 0,
      workersLost: 0,
      bytesSent: 0,
      bytesReceived: 0,
    },
  };
}

/** Polls the catalog until it holds a record of `project` (updates are datagrams: no reply). */
async function recordOf(
  catalog: CatalogServer,
  project: string,
): Promise<Record<string, unknown>> {
  for (;;) {
    const found = (await catalog.records()).find((r) => r.project === project);
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("parseCatalog and checkProject", () => {
  it("takes HOST:PORT, HOST (port 9097) and lists of them", () => {
    expect(parseCatalog("127.0.0.1:9123")).toEqual([
      { host: "127.0.0.1", port: 9123 },
    ]);
    expect(parseCatalog("a.example, b.example:1")).toEqual([
      { host: "a.example", port: 9097 },
      { host: "b.example", port: 1 },
    ]);
    expect(parseCatalog("[::1]:9000")).toEqual([{ host: "::1", port: 9000 }]);
  });

  it("refuses anything else with ENVPACK_USAGE_BAD_CONFIG", () => {
    for (const bad of ["", "host:", "host:99999", "a b:1", "host:port"])
      expect(() => parseCatalog(bad)).toThrow(
        expect.objectContaining({ code: "ENVPACK_USAGE_BAD_CONFIG" }),
      );
    for (const bad of ["", "two\nlines"])
      expect(() => checkProject(bad)).toThrow(
        expect.objectContaining({ code: "ENVPACK_USAGE_BAD_CONFIG" }),
      );
  });
});

describe("CatalogAdvertiser against catalog_server", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it("is recorded with its project, port and the address it sent from", async () => {
    const catalog = await startCatalogServer();
    cleanup.push(() => catalog.stop());
    const events: EnvpackEvent[] = [];
    const advertiser = new CatalogAdvertiser({
      catalogs: parseCatalog(catalog.address),
      snapshot: () => snapshot("envpack-catalog-test", 4321),
      onEvent: (e) => events.push(e),
    });
    cleanup.push(() => advertiser.stop());
    await advertiser.start();
    const record = await recordOf(catalog, "envpack-catalog-test");
    expect(record).toMatchObject({
      type: "wq_master",
      project: "envpack-catalog-test",
      port: 4321,
      address: "127.0.0.1",
      tasks_waiting: 0,
    });
    expect(events).toEqual([]);
    expect(advertiser.sent).toBe(1);
  });

  it("leads a worker started with -M PROJECT to the advertised port", async () => {
    const catalog = await startCatalogServer();
    cleanup.push(() => catalog.stop());
    // A listener standing in for the manager's port: it reads the worker's greeting and sends
    // `exit`, which makes a worker leave for good.
    const greetings: string[] = [];
    const server: Server = createServer((socket) => {
      socket.once("data", (chunk: Buffer) => {
        greetings.push(chunk.toString().split("\n")[0] as string);
        socket.end("exit\n");
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanup.push(
      () => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    const port = (server.address() as { port: number }).port;
    const project = `envpack-m-${process.pid}`;
    const advertiser = new CatalogAdvertiser({
      catalogs: parseCatalog(catalog.address),
      snapshot: () => snapshot(project, port),
    });
    cleanup.push(() => advertiser.stop());
    await advertiser.start();
    // The worker caches an empty answer for a minute: start it once the catalog has the record.
    await recordOf(catalog, project);
    const workdir = await tempDir();
    const worker = spawn(
      "work_queue_worker",
      [
        "-M",
        project,
        "--catalog",
        catalog.address,
        "--single-shot",
        "--timeout",
        "60",
        "--cores",
        "1",
        "--memory",
        "200",
        "--disk",
        "200",
        "--workdir",
        workdir,
      ],
      { stdio: "ignore" },
    );
    const exited = once(worker, "exit");
    cleanup.push(async () => {
      if (worker.exitCode === null && worker.signalCode === null) {
        process.kill(worker.pid as number, "SIGKILL");
        await exited;
      }
    });
    const [code] = (await exited) as [number | null];
    expect(greetings).toHaveLength(1);
    expect(greetings[0]).toMatch(/^workqueue 9 /);
    expect(code).toBe(0);
  });
});
