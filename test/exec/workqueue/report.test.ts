// The run log and report with the Work Queue backend: two real work_queue_workers (one leaves at
// the end), packed module apps, a failure and an over-label retry under resource_monitor; the page
// opened in headless Chromium draws one bar per attempt and the bundle transfers per worker.

import { EventEmitter, once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Executor, report, type EnvpackEvent } from "../../../src/index.js";
import { renderReport } from "../../helpers/report-page.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { startWorker } from "../../helpers/wq-worker.js";

const APP = `
import { setTimeout as delay } from "node:timers/promises";
export async function hold(ms) {
  await delay(ms);
  return ms;
}
export function fail(message) {
  throw new Error(message);
}
`;

describe("run report (Work Queue backend)", () => {
  it("logs workers joining and leaving, bundle transfers and every attempt; the page draws them", async () => {
    const dir = await tempDir("envpack-wq-report-");
    const app = join(dir, "work.mjs");
    await writeFile(app, APP);
    const log = join(dir, "run.jsonl");
    const bus = new EventEmitter();
    const events: EnvpackEvent[] = [];
    const executor = new Executor({
      backend: "workqueue",
      port: 0,
      pack: true,
      autolabel: true,
      cacheDir: join(dir, "cache"),
      log,
      progress: false,
      onEvent: (e) => {
        events.push(e);
        bus.emit(e.type, e);
      },
    });
    let leaving: string | undefined;
    try {
      const { port } = await executor.listening();
      const joined = (n: number) =>
        (async () => {
          while (events.filter((e) => e.type === "worker:joined").length < n)
            await once(bus, "worker:joined");
        })();
      await startWorker({ port: port as number, cores: 2, memory: 1000 });
      const second = await startWorker({
        port: port as number,
        cores: 1,
        memory: 1000,
      });
      await joined(2);
      const small = executor.app(app, "hold", {
        name: "small",
        resources: { cores: 1, memory: 200 },
      });
      const fail = executor.app(app, "fail", {
        resources: { cores: 1, memory: 200 },
      });
      const alloc = executor.command(
        `python3 -c "import time; b=bytearray($1<<20); b[::4096]=b'x'*len(b[::4096]); time.sleep(2)"`,
        { name: "alloc" },
      );
      // Measured on a whole worker: the label is about a small python; 300 MB goes over it.
      expect((await alloc("5")).exitCode).toBe(0);
      const settled = await Promise.allSettled([
        ...Array.from({ length: 4 }, () => small(300)),
        alloc("300"),
        fail("boom"),
      ]);
      expect(settled.map((s) => s.status)).toEqual([
        ...Array<string>(5).fill("fulfilled"),
        "rejected",
      ]);
      const left = once(bus, "worker:left");
      process.kill(second.pid, "SIGKILL");
      leaving = ((await left)[0] as { workerId: string }).workerId;
    } finally {
      await executor.shutdown();
    }
    const attempts = events.filter(
      (e) => e.type === "task:state" && e.state === "running",
    ).length;

    const { figures, html } = await report({ log });
    expect(figures).toMatchObject({ backend: "workqueue", complete: true });
    expect(figures.tasks).toMatchObject({
      total: 7,
      done: 6,
      failed: 1,
      attempts,
      overLabel: 1,
    });
    expect(attempts).toBe(8);
    expect(figures.workers).toHaveLength(2);
    const gone = figures.workers.find((w) => w.id === leaving);
    expect(gone?.leftS).not.toBeNull();
    expect(gone?.resources.cores).toBe(1);
    const steps = figures.bundles.map((b) => `${b.step}@${b.place}`);
    expect(steps.filter((s) => s === "build@host")).toHaveLength(1);
    // A bundle goes once to each worker that ran a packed task, never twice.
    const transfers = steps.filter((s) => s.startsWith("transfer@"));
    expect(transfers.length).toBeGreaterThanOrEqual(1);
    expect(new Set(transfers).size).toBe(transfers.length);
    for (const b of figures.bundles.filter((b) => b.step === "transfer"))
      expect(b.bytes).toBeGreaterThan(1_000_000);

    const page = await renderReport(
      html?.path as string,
      join(dir, "report.png"),
    );
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([]);
    expect(page.marks["timeline"]).toBe(attempts);
    expect(page.bars.filter(([, kind]) => kind === 1)).toEqual([
      ["work.fail", 1],
    ]);
    expect(page.bars.filter(([, kind]) => kind === 2)).toEqual([["alloc", 2]]);
    // One bar per place and step: the build here, a transfer per worker.
    expect(page.marks["bundles"]).toBe(new Set(steps).size);
    expect(page.datasets["cores"]).toHaveLength(6);
  });
});
