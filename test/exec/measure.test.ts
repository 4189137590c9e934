// Measuring real process trees from /proc and sandboxes on disk, and the monitor that enforces
// labels from those samples.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LocalBackend } from "../../src/exec/index.js";
import { Monitor } from "../../src/exec/local/monitor.js";
import { RECYCLE_MB } from "../../src/exec/local/runtime-pool.js";
import {
  cpuOf,
  diskUsage,
  sampleTree,
  treeOf,
} from "../../src/exec/local/proc-tree.js";
import { emptyQueue } from "../helpers/empty-queue.js";
import { tempDir } from "../helpers/temp-dir.js";

const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null)
      process.kill(-(child.pid as number), "SIGKILL");
});

/** Starts `script` under node in its own process group; resolves once it printed "ready". */
async function start(script: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`exited early: ${code}`)));
  });
  return child;
}

/** A node that allocates `mb` MB in a grandchild and waits. */
function holdingGrandchild(mb: number): string {
  const inner = `const b = Buffer.alloc(${mb} * 1048576).fill(1); console.log("ready"); setInterval(() => b[0]++, 1000);`;
  return `const { spawn } = require("node:child_process");
const c = spawn(process.execPath, ["-e", ${JSON.stringify(inner)}], { stdio: ["ignore", "inherit", "inherit"] });
setInterval(() => {}, 1000);`;
}

describe("process-tree sampling", () => {
  it("finds grandchildren and counts their resident memory", async () => {
    const child = await start(holdingGrandchild(150));
    const pid = child.pid as number;
    const tree = treeOf(pid);
    expect(tree[0]).toBe(pid);
    expect(tree.length).toBe(2);
    const sample = sampleTree(pid);
    expect(sample.rssMB).toBeGreaterThanOrEqual(150);
    // The grandchild alone holds the block; the tree's sum is more than either process.
    const own = sampleTree(tree[1] as number);
    expect(own.rssMB).toBeGreaterThanOrEqual(150);
    expect(sample.rssMB).toBeGreaterThan(own.rssMB);
  });

  it("counts CPU time of a spinning tree and reads zeros once it is gone", async () => {
    const child = await start(
      `console.log("ready"); const end = Date.now() + 60000; while (Date.now() < end);`,
    );
    const pid = child.pid as number;
    const first = cpuOf(pid);
    await new Promise((r) => setTimeout(r, 600));
    expect(cpuOf(pid)).toBeGreaterThan(first);
    expect(sampleTree(pid).cpuMs).toBeGreaterThan(first);
    process.kill(-pid, "SIGKILL");
    await new Promise((r) => child.once("close", r));
    expect(sampleTree(pid)).toEqual({ rssMB: 0, cpuMs: 0 });
    expect(treeOf(pid)).toEqual([pid]);
    expect(cpuOf(pid)).toBe(0);
  });

  it("sums the allocated bytes of files in nested directories; a missing directory is 0", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "a", "b"), { recursive: true });
    await writeFile(join(dir, "one"), Buffer.alloc(3 * 1048576, 1));
    await writeFile(join(dir, "a", "b", "two"), Buffer.alloc(2 * 1048576, 1));
    const bytes = await diskUsage(dir);
    expect(bytes).toBeGreaterThanOrEqual(5 * 1048576);
    expect(bytes).toBeLessThan(6 * 1048576);
    expect(await diskUsage(join(dir, "nothing"))).toBe(0);
  });
});

describe("Monitor", () => {
  it("keeps the peaks of a tree under its label and does not fire", async () => {
    const child = await start(holdingGrandchild(60));
    const sandbox = await tempDir();
    const fired: string[] = [];
    const monitor = new Monitor({
      pid: child.pid as number,
      sandbox,
      label: { cores: 1, memory: 4096, disk: 100, gpus: 0 },
      onExceeded: (what) => fired.push(what),
    });
    await new Promise((r) => setTimeout(r, 400));
    await writeFile(join(sandbox, "f"), Buffer.alloc(2 * 1048576, 1));
    const peaks = await monitor.stop();
    expect(fired).toEqual([]);
    expect(peaks.rssMB).toBeGreaterThanOrEqual(60);
    expect(peaks.diskMB).toBeGreaterThanOrEqual(2);
  });

  it("does not charge a warm process's earlier CPU to the task", async () => {
    const child = await start(
      // Busy for 500 ms of its own CPU time (not wall time: a loaded machine gives it less).
      `const t = process.cpuUsage(); while (process.cpuUsage(t).user < 500_000); console.log("ready"); setInterval(() => {}, 1000);`,
    );
    const pid = child.pid as number;
    const before = cpuOf(pid);
    expect(before).toBeGreaterThan(200);
    const monitor = new Monitor({
      pid,
      sandbox: await tempDir(),
      label: { cores: 1, memory: 4096, disk: 100, gpus: 0 },
      warm: true,
      onExceeded: () => {},
    });
    await new Promise((r) => setTimeout(r, 300));
    const peaks = await monitor.stop();
    expect(peaks.cpuMs).toBeLessThan(before / 2);
    expect(peaks.rssMB).toBeGreaterThan(10);
  });

  it("fires once for memory over the label, and once for disk over the label", async () => {
    const child = await start(holdingGrandchild(120));
    const sandbox = await tempDir();
    const fired: string[] = [];
    const memory = new Monitor({
      pid: child.pid as number,
      sandbox,
      label: { cores: 1, memory: 100, disk: 100, gpus: 0 },
      onExceeded: (what) => fired.push(what),
    });
    await new Promise((r) => setTimeout(r, 400));
    await memory.stop();
    expect(fired).toEqual(["memory"]);

    const idle = await start(
      `console.log("ready"); setInterval(() => {}, 1000);`,
    );
    await writeFile(join(sandbox, "big"), Buffer.alloc(12 * 1048576, 1));
    const disk = new Monitor({
      pid: idle.pid as number,
      sandbox,
      label: { cores: 1, memory: 4096, disk: 10, gpus: 0 },
      onExceeded: (what) => fired.push(what),
    });
    await new Promise((r) => setTimeout(r, 400));
    const peaks = await disk.stop();
    expect(fired).toEqual(["memory", "disk"]);
    expect(peaks.diskMB).toBeGreaterThan(10);
  });
});

describe("warm runtime memory", () => {
  it("replaces a runtime that keeps what its tasks allocate, before later tasks' peaks count it", async () => {
    const dir = await tempDir();
    const module = join(dir, "keep.mjs");
    // Each call keeps 24 MB alive in the module: a leak the runtime's collections cannot free.
    await writeFile(
      module,
      "const kept = []; export function keep(mb) { kept.push(Buffer.allocUnsafe(mb * 1048576).fill(1)); return process.pid; }\n",
    );
    const backend = new LocalBackend({
      workers: [{ cores: 1 }],
      workDir: join(dir, "work"),
    });
    await backend.start({
      workerJoined: () => {},
      workerLeft: () => {},
      ...emptyQueue,
    });
    try {
      const results = [];
      for (let i = 0; i < 10; i++)
        results.push(
          await backend.runTask(
            {
              id: `keep-${i}`,
              category: "keep",
              payload: {
                kind: "module",
                module,
                exportName: "keep",
                args: [24],
              },
              resources: {},
              attempt: 0,
            },
            {
              workerId: "local-1",
              label: { cores: 1, memory: 4096, disk: 4096, gpus: 0 },
            },
            new AbortController().signal,
          ),
        );
      expect(results.map((r) => r.reason)).toEqual(Array(10).fill("ok"));
      const first = results[0]?.usage.peakMemory ?? 0;
      // Kept alive, 10 × 24 MB would reach the first peak + 216 MB; a runtime is replaced once it
      // holds more than RECYCLE_MB beyond its first task's rest.
      for (const r of results)
        expect(r.usage.peakMemory).toBeLessThanOrEqual(
          first + RECYCLE_MB + 24 + 16,
        );
      expect(new Set(results.map((r) => r.value)).size).toBeGreaterThan(1);
    } finally {
      await backend.shutdown();
    }
  });
});
