// autolabel over warm runtimes: a task's measured memory is its own, not what earlier tasks in the
// same runtime left behind.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Executor, type EnvpackEvent } from "../../src/index.js";
import { tempDir } from "../helpers/temp-dir.js";

const MB_PER_TASK = 128;
const TASKS = 50;

/** Tasks that report the runtime at rest, and allocate, touch and release `mb` MB. */
async function memoryModule(): Promise<string> {
  const file = join(await tempDir(), "memory.mjs");
  await writeFile(
    file,
    [
      "export function rest() { return { pid: process.pid, rssMB: process.memoryUsage.rss() / 1048576 }; }",
      "export async function churn(mb) {",
      "  const block = Buffer.allocUnsafe(mb * 1048576).fill(1);",
      "  await new Promise((resolve) => setTimeout(resolve, 30));",
      "  return { pid: process.pid, mb: block.length / 1048576 };",
      "}",
    ].join("\n"),
  );
  return file;
}

describe("autolabel with warm runtimes", () => {
  it("labels from one task's own peak: 50 tasks that allocate and release 128 MB in one runtime neither creep nor get killed", async () => {
    const events: EnvpackEvent[] = [];
    const ex = new Executor({
      // One core: one task at a time, so every task runs in the same warm runtime.
      workers: [{ cores: 1, memory: 4000 }],
      workDir: await tempDir(),
      autolabel: true,
      onEvent: (e) => events.push(e),
    });
    try {
      const file = await memoryModule();
      const rest = ex.app<[], { pid: number; rssMB: number }>(file, "rest");
      const churn = ex.app<[number], { pid: number; mb: number }>(
        file,
        "churn",
        { name: "churn" },
      );
      const baseline = await rest();
      const pids = new Set<number>([baseline.pid]);
      for (let i = 0; i < TASKS; i++) {
        const done = await churn(MB_PER_TASK);
        expect(done.mb).toBe(MB_PER_TASK);
        pids.add(done.pid);
      }
      const ownPeak = baseline.rssMB + MB_PER_TASK;
      const labels = events.flatMap((e) =>
        e.type === "label:chosen" &&
        e.category === "churn" &&
        e.label?.memory !== undefined
          ? [e.label.memory]
          : [],
      );
      const reasons = events.flatMap((e) =>
        e.type === "task:state" && e.result ? [e.result.reason] : [],
      );
      expect(reasons.length).toBe(TASKS + 1);
      expect(reasons.filter((r) => r !== "ok")).toEqual([]);
      expect([...pids]).toEqual([baseline.pid]);
      const summary = ex.summary().find((s) => s.category === "churn");
      expect(summary?.samples).toBe(TASKS);
      expect(summary?.overLabel).toBe(0);
      // The allocation was seen, and no label went past one task's peak over the runtime at rest.
      expect(summary?.peaks.memory).toBeGreaterThanOrEqual(MB_PER_TASK);
      expect(labels.length).toBeGreaterThan(0);
      for (const label of labels)
        expect(label).toBeLessThanOrEqual(ownPeak * 1.2);
    } finally {
      await ex.shutdown();
    }
  }, 600_000);
});
