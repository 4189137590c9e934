// Python apps in warm runtimes on real work_queue_workers: the Conda fixture's python, packed with
// the app, runs runtime/python-runner.py --connect as a long-lived Work Queue task that proves its
// one-time token to the manager and runs many tasks.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { workerPath } from "../../helpers/min-path.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { processesLeftUnder } from "../../helpers/wq-worker.js";
import {
  expectFewRuntimes,
  expectOnlyKilledTaskRetried,
  expectOverLabelRetried,
  expectSteadyLabel,
  manager,
  runtimePids,
  until,
} from "./warm-harness.js";

const APP = `
import os
import sys
import time


def echo(i):
    return {"i": i, "pid": os.getpid(), "executable": sys.executable}


def block(folder):
    """Hangs (its pid in folder/pid-N) until folder/release exists; then answers at once."""
    if os.path.exists(os.path.join(folder, "release")):
        return os.getpid()
    open(os.path.join(folder, "pid-%d" % os.getpid()), "w").close()
    while True:
        time.sleep(1)


def alloc(mb, hold_ms):
    """Allocates mb MB, touches every page, holds it hold_ms, releases it."""
    block = bytearray(mb * 1048576)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(hold_ms / 1000)
    return len(block) // 1048576
`;

const PYTHON = /(^|\/)python3?(\.\d+)?$/;

/** This test's copy of the app, with a bundle cache of its own. */
async function app(): Promise<{ file: string; cacheDir: string }> {
  const dir = await tempDir("envpack-wq-warm-py-");
  await writeFile(join(dir, "warm.py"), APP);
  return { file: join(dir, "warm.py"), cacheDir: join(dir, "cache") };
}

function condaPrefix(): string {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda.prefix;
}

/** An executor with pack: true and Python apps of warm.py on the Conda fixture's python. */
async function pythonManager(
  options: Parameters<typeof manager>[0] = {},
): Promise<
  Awaited<ReturnType<typeof manager>> & {
    py<A extends unknown[], R>(
      fn: string,
      more?: { name?: string; cores?: number },
    ): (...args: A) => Promise<R>;
  }
> {
  const { file, cacheDir } = await app();
  const m = await manager({ pack: true, cacheDir, ...options });
  return {
    ...m,
    py: <A extends unknown[], R>(
      fn: string,
      more: { name?: string; cores?: number } = {},
    ) =>
      m.executor.pythonApp<A, R>(file, fn, {
        env: condaPrefix(),
        ...(more.name === undefined ? {} : { name: more.name }),
        ...(more.cores === undefined
          ? {}
          : { resources: { cores: more.cores } }),
      }),
  };
}

describe("Python warm runtimes on Work Queue workers", () => {
  it("runs many tasks through few runtimes of the bundle's python, each result its call's; a password holds; shutdown leaves no process", async () => {
    const dir = await tempDir("envpack-wq-pw-");
    const password = join(dir, "password");
    await writeFile(password, "s3cret\n");
    const m = await pythonManager({ password });
    // The worker has no python of its own: the bundle brings it.
    const { worker } = await m.worker(2, 1000, {
      password,
      env: { PATH: await workerPath() },
    });
    const echo = m.py<[number], { i: number; pid: number; executable: string }>(
      "echo",
      { cores: 1 },
    );
    // Two 1-core slots on a 2-core worker: at most two runtimes served all 200.
    const { results, pids } = await expectFewRuntimes(echo, 200);
    for (const r of results)
      expect(r.executable).toMatch(/envpack\/envs\/[0-9a-f]{64}\/bin\//);
    for (const r of m.results()) {
      expect(r.ok).toBe(true);
      expect(r.usage.peakMemory).toBeGreaterThan(5);
    }
    expect((await runtimePids(worker, PYTHON)).sort()).toEqual(
      [...pids].sort(),
    );
    await m.executor.shutdown();
    expect(await worker.exited).toBe(0);
    expect(await processesLeftUnder(worker.dir)).toEqual([]);
  });

  it("retries only the task of a runtime killed under it; the others are unaffected", async () => {
    const m = await pythonManager({ maxRetries: 1 });
    const dir = await tempDir("envpack-wq-block-");
    const { worker } = await m.worker(2);
    const block = m.py<[string], number>("block", { cores: 1 });
    const echo = m.py<[number], { i: number }>("echo", { cores: 1 });
    await expectOnlyKilledTaskRetried(m, block, echo, dir);
    await m.executor.shutdown();
    expect(await processesLeftUnder(worker.dir)).toEqual([]);
  });

  it("kills a runtime over its autolabel memory label and runs the task again larger", async () => {
    const m = await pythonManager({ autolabel: true });
    const { worker } = await m.worker(2, 1000);
    const alloc = m.py<[number, number], number>("alloc", { name: "alloc" });
    // Measured on a whole worker: the label is about one runtime and a small task.
    await expectOverLabelRetried(m, alloc);
    expect(await processesLeftUnder(worker.dir)).toEqual([]);
  });

  it("keeps an autolabel memory label at one task's peak over 50 tasks in one runtime", async () => {
    const m = await pythonManager({ autolabel: true });
    await m.worker(2, 1000);
    const echo = m.py<[number], { pid: number }>("echo", {
      name: "base",
      cores: 1,
    });
    const alloc = m.py<[number, number], number>("alloc", { name: "alloc" });
    await expectSteadyLabel(m, () => echo(0), alloc);
  });
});
