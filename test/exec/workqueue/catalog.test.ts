// Catalog advertisement: the update Debian's catalog_server 9.9 records, and a work_queue_worker
// started with -M PROJECT finding the advertised port through it.

import { afterEach, describe, expect, it } from "vitest";
import type { EnvpackEvent } from "../../../src/core/index.js";
import { Executor } from "../../../src/index.js";
import {
  CatalogAdvertiser,
  checkProject,
  parseCatalog,
} from "../../../src/exec/workqueue/catalog.js";
import { WorkQueueBackend } from "../../../src/exec/index.js";
import type { QueueSnapshot } from "../../../src/exec/workqueue/status.js";
import {
  startCatalogServer,
  type CatalogServer,
} from "../../helpers/catalog-server.js";
import { startWorker } from "../../helpers/wq-worker.js";
import { tempDir } from "../../helpers/temp-dir.js";

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
    // The manager checks them when it is made, before it listens.
    expect(
      () => new WorkQueueBackend({ port: 0, project: "p", catalog: "h:x" }),
    ).toThrow(expect.objectContaining({ code: "ENVPACK_USAGE_BAD_CONFIG" }));
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

  it("leads a worker started with -M PROJECT to an Executor's manager, which runs a call on it", async () => {
    const catalog = await startCatalogServer();
    cleanup.push(() => catalog.stop());
    const project = `envpack-m-${process.pid}`;
    const executor = new Executor({
      backend: "workqueue",
      port: 0,
      project,
      catalog: catalog.address,
      cacheDir: await tempDir(),
    });
    cleanup.push(() => executor.shutdown({ cancel: true }));
    const { port } = await executor.listening();
    // The call waits for a worker; the record shows it waiting.
    const echo = executor.command("echo found by name", {
      resources: { cores: 1 },
    });
    const result = echo();
    // The worker caches an empty answer for a minute: start it once the catalog has the record.
    expect(await recordOf(catalog, project)).toMatchObject({
      port,
      address: "127.0.0.1",
    });
    await startWorker({
      project: { name: project, catalog: catalog.address },
      cores: 1,
      memory: 300,
      disk: 300,
    });
    expect(await result).toEqual({ exitCode: 0, stdout: "found by name\n" });
  });
});
