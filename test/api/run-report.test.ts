// The run log and its report on the local backend: a mixed workload (two apps of different sizes,
// a failure, an over-label retry, two workers) logged, folded into figures, drawn in headless
// Chromium; a log cut mid-line; the live status line.

import { readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { report } from "../../src/api/index.js";
import { RunStatus } from "../../src/api/run-status.js";
import { Executor, type EnvpackEvent } from "../../src/index.js";
import { renderReport } from "../helpers/report-page.js";
import { tempDir } from "../helpers/temp-dir.js";

const APP = `
import { setTimeout as delay } from "node:timers/promises";
/** Holds mb MB (every page touched) for ms milliseconds. */
export async function hold(ms, mb) {
  const block = Buffer.alloc(mb * 1024 * 1024, 1);
  await delay(ms);
  return block.length;
}
export function fail(message) {
  throw new Error(message);
}
`;

describe("run log and report (local backend)", () => {
  it("logs a mixed run on two workers; the report's figures and charts account for every attempt", async () => {
    const dir = await tempDir("envpack-report-");
    const app = join(dir, "work.mjs");
    await writeFile(app, APP);
    const log = join(dir, "run.jsonl");
    const events: EnvpackEvent[] = [];
    const executor = new Executor({
      workers: [
        { id: "big", cores: 2, memory: 2000 },
        { id: "small", cores: 1, memory: 1000 },
      ],
      autolabel: true,
      log,
      progress: false,
      onEvent: (e) => events.push(e),
    });
    const small = executor.app(app, "hold", {
      name: "small",
      resources: { cores: 1, memory: 300 },
    });
    // No resources: measured on a whole worker, then labelled from its peak.
    const large = executor.app(app, "hold", { name: "large" });
    const fail = executor.app(app, "fail", {
      resources: { cores: 1, memory: 300 },
    });
    try {
      await large(300, 60);
      const settled = await Promise.allSettled([
        ...Array.from({ length: 5 }, () => small(150, 1)),
        large(300, 1),
        // Well over the label its category learnt: killed, run again on a whole worker.
        large(800, 300),
        fail("boom"),
      ]);
      expect(settled.map((s) => s.status)).toEqual([
        ...Array<string>(7).fill("fulfilled"),
        "rejected",
      ]);
    } finally {
      await executor.shutdown();
    }
    const attempts = events.filter(
      (e) => e.type === "task:state" && e.state === "running",
    ).length;

    // The log: the run first, then workers and apps, every event once, the end last.
    const lines = (await readFile(log, "utf8"))
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; t: number });
    expect(lines[0]).toMatchObject({ type: "run:start", backend: "local" });
    expect(lines[lines.length - 1]).toMatchObject({ type: "run:end" });
    expect(lines.length).toBe(events.length + 2);
    expect(
      lines.filter((l) => l.type === "worker:joined").map((l) => l),
    ).toMatchObject([
      { workerId: "big", resources: { cores: 2, memory: 2000 } },
      { workerId: "small", resources: { cores: 1, memory: 1000 } },
    ]);
    expect(
      lines.filter((l) => l.type === "app:defined").map((l) => l),
    ).toMatchObject([{ app: "small" }, { app: "large" }, { app: "work.fail" }]);

    const { figures, html } = await report({ log });
    expect(figures.complete).toBe(true);
    expect(figures.tasks).toMatchObject({
      total: 9,
      done: 8,
      failed: 1,
      attempts,
      retries: 1,
      overLabel: 1,
      workerLost: 0,
    });
    expect(attempts).toBe(10);
    const byApp = Object.fromEntries(figures.apps.map((a) => [a.app, a]));
    expect(byApp["small"]).toMatchObject({ tasks: 5, done: 5, failed: 0 });
    expect(byApp["large"]).toMatchObject({
      tasks: 3,
      done: 3,
      attempts: 4,
      overLabel: 1,
    });
    expect(byApp["work.fail"]).toMatchObject({ tasks: 1, failed: 1 });
    expect(byApp["large"]?.peakMemoryMB).toBeGreaterThan(300);
    for (const a of figures.apps) {
      expect(a.wallS.median).toBeGreaterThan(0);
      expect(a.wallS.p95).toBeGreaterThanOrEqual(a.wallS.median as number);
    }
    expect(figures.workers.map((w) => w.id)).toEqual(["big", "small"]);
    for (const w of figures.workers) {
      expect(w.utilisation.coresDeclared).toBeGreaterThan(0);
      expect(w.utilisation.coresDeclared).toBeLessThanOrEqual(1);
      expect(w.utilisation.memoryMeasured).toBeGreaterThan(0);
    }
    expect(figures.labels.map((l) => l.category)).toContain("large");
    expect(figures.warnings).toEqual([]);

    const page = await renderReport(
      html?.path as string,
      join(dir, "report.png"),
    );
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([]);
    // One bar per attempt; the failure and the attempt run again marked.
    expect(page.marks["timeline"]).toBe(attempts);
    expect(page.bars.filter(([, kind]) => kind === 1)).toEqual([
      ["work.fail", 1],
    ]);
    expect(page.bars.filter(([, kind]) => kind === 2)).toEqual([["large", 2]]);
    expect(page.datasets["timeline"]).toEqual(["small", "large", "work.fail"]);
    // Per worker: declared, measured and capacity lines, for cores and for memory.
    expect(page.datasets["cores"]).toHaveLength(6);
    expect(page.datasets["memory"]).toHaveLength(6);
    expect(page.marks["cores"]).toBeGreaterThan(2 * attempts);
    // Each labelled category: its label's steps and one peak per measured attempt.
    const measured = lines.filter(
      (l) =>
        l.type === "task:state" &&
        (l as unknown as { result?: { usage?: unknown } }).result?.usage !==
          undefined,
    ).length;
    const labelSteps = lines.filter((l) => l.type === "label:chosen").length;
    expect(page.marks["labels"]).toBe(
      measured + labelSteps + figures.labels.length,
    );
    expect(page.rows).toHaveLength(9);
    expect(page.rows.find((r) => r[1] === "work.fail")?.[8]).toMatch(/boom/);
  });

  it("reports a log cut in the middle of a line up to that line, with a warning", async () => {
    const dir = await tempDir("envpack-report-cut-");
    const log = join(dir, "run.jsonl");
    const executor = new Executor({
      workers: [{ cores: 1, memory: 1000 }],
      log,
      progress: false,
    });
    const echo = executor.command("echo $1", { resources: { cores: 1 } });
    await Promise.all([echo("a"), echo("b"), echo("c")]);
    await executor.shutdown();
    const text = await readFile(log, "utf8");
    // Cut inside the last task's "done" line, as a killed writer would leave it.
    const lines = text.trimEnd().split("\n");
    const lastDone = lines.findLastIndex((l) => l.includes('"state":"done"'));
    const keep = lines.slice(0, lastDone).join("\n").length + 1;
    await truncate(log, keep + 40);
    const warnings: EnvpackEvent[] = [];
    const { figures } = await report({
      log,
      output: join(dir, "cut.html"),
      onEvent: (e) => warnings.push(e),
    });
    expect(warnings).toMatchObject([
      {
        type: "warn",
        code: "ENVPACK_WARN_RUN_LOG_TRUNCATED",
        data: { line: lastDone + 1 },
      },
    ]);
    expect(figures.warnings.map((w) => w.code)).toEqual([
      "ENVPACK_WARN_RUN_LOG_TRUNCATED",
    ]);
    expect(figures.complete).toBe(false);
    expect(figures.tasks).toMatchObject({ total: 3, done: 2, unfinished: 1 });
  });

  it("closes the log of an executor whose backend refuses its options", async () => {
    const log = join(await tempDir("envpack-report-refused-"), "run.jsonl");
    expect(() => new Executor({ backend: "workqueue", port: -1, log })).toThrow(
      expect.objectContaining({ code: "ENVPACK_USAGE_BAD_CONFIG" }),
    );
    const records = (await readFile(log, "utf8"))
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string });
    expect(records).toMatchObject([
      { type: "run:start", backend: "workqueue" },
      { type: "run:end", error: "ENVPACK_USAGE_BAD_CONFIG" },
    ]);
  });

  it("refuses a file that is not a run log, and a missing one, with coded errors", async () => {
    const dir = await tempDir("envpack-report-bad-");
    await writeFile(join(dir, "x.jsonl"), '{"hello":1}\n');
    await expect(report({ log: join(dir, "x.jsonl") })).rejects.toMatchObject({
      code: "ENVPACK_INPUT_RUN_LOG_INVALID",
    });
    await expect(
      report({ log: join(dir, "none.jsonl") }),
    ).rejects.toMatchObject({ code: "ENVPACK_INPUT_ENTRY_NOT_FOUND" });
  });
});

describe("RunStatus", () => {
  const run = (interactive: boolean) => {
    let clock = 0;
    const out: string[] = [];
    const status = new RunStatus(
      { write: (t: string) => out.push(t) },
      { interactive, now: () => clock },
    );
    const state = (
      id: string,
      s: "queued" | "running" | "done" | "failed" | "retry",
    ) => status.onEvent({ type: "task:state", id, category: "c", state: s });
    status.onEvent({
      type: "worker:joined",
      workerId: "w",
      resources: { cores: 1, memory: 1, disk: 1, gpus: 0 },
    });
    state("t1", "queued");
    state("t2", "queued");
    state("t1", "running");
    clock = 2000;
    state("t1", "failed");
    state("t1", "retry");
    state("t1", "running");
    state("t2", "running");
    clock = 4000;
    state("t1", "done");
    state("t2", "failed");
    status.stop();
    return { out, counts: status.counts() };
  };

  it("counts tasks, retries and workers; a terminal gets a redrawn line, the rest plain lines", () => {
    const tty = run(true);
    expect(tty.counts).toEqual({
      waiting: 0,
      running: 0,
      done: 1,
      failed: 1,
      retried: 1,
      workers: 1,
    });
    expect(tty.out.every((l) => l.startsWith("\r\x1b[2K"))).toBe(true);
    expect(tty.out[tty.out.length - 1]).toBe(
      "\r\x1b[2Ktasks: 0 waiting, 0 running, 1 done, 1 failed (1 retried) · workers: 1 · 0.5 tasks/s\n",
    );
    const plain = run(false);
    expect(plain.out).toEqual([
      "tasks: 0 waiting, 0 running, 1 done, 1 failed (1 retried) · workers: 1 · 0.5 tasks/s\n",
    ]);
  });
});
