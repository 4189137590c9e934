// Warm runtimes on real work_queue_workers: module apps run in long-lived Work Queue tasks that
// connect back to the manager, prove a one-time token and run many tasks each.

import { once } from "node:events";
import { chmod, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build } from "../../../src/api/index.js";
import type { TaskBundle } from "../../../src/core/index.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { processesLeftUnder, startWorker } from "../../helpers/wq-worker.js";
import { harness } from "./harness.js";
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
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function echo(i) {
  return { i, pid: process.pid, env: process.env.ENVPACK_ENV ?? null };
}

/** Hangs (its pid in dir/pid-N) until dir/release exists; then answers at once. */
export async function block(dir) {
  if (existsSync(join(dir, "release"))) return process.pid;
  writeFileSync(join(dir, "pid-" + process.pid), "");
  await new Promise(() => setInterval(() => {}, 1000));
}

export async function sleep(ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return process.pid;
}

/** Allocates mb MB, touches every page, holds it holdMs, releases it. */
export async function alloc(mb, holdMs) {
  const block = Buffer.alloc(mb * 1048576, 1);
  await new Promise((resolve) => setTimeout(resolve, holdMs));
  return block.length / 1048576;
}
`;

async function appFile(source = APP): Promise<string> {
  const dir = await tempDir("envpack-wq-warm-");
  const file = join(dir, "app.mjs");
  await writeFile(file, source);
  return file;
}

async function bundleOf(entry: string): Promise<TaskBundle> {
  const cacheDir = join(await tempDir("envpack-wq-cache-"), "cache");
  const built = await build({
    entries: [entry],
    cwd: join(entry, ".."),
    cacheDir,
  });
  return { digest: built.digest, path: built.path, kind: built.kind };
}

describe("warm runtimes on Work Queue workers", () => {
  it("runs many tasks through few runtimes, each result its call's; shutdown leaves no process", async () => {
    const m = await manager({});
    const file = await appFile();
    const { worker } = await m.worker(2);
    const echo = m.executor.app<[number], { i: number; pid: number }>(
      file,
      "echo",
      { resources: { cores: 1 } },
    );
    // Two 1-core slots on a 2-core worker: at most two runtimes served all 300.
    const { pids } = await expectFewRuntimes(echo, 300);
    // Per-task measurements came back with every result.
    for (const r of m.results()) {
      expect(r.ok).toBe(true);
      expect(r.usage.peakMemory).toBeGreaterThan(10);
    }
    expect((await runtimePids(worker)).sort()).toEqual([...pids].sort());
    await m.executor.shutdown();
    expect(await worker.exited).toBe(0);
    expect(await processesLeftUnder(worker.dir)).toEqual([]);
  });

  it("ends a runtime idle for runtimeIdleMs; the worker stays", async () => {
    const m = await manager({ runtimeIdleMs: 200 });
    const file = await appFile();
    const { worker } = await m.worker(1);
    const echo = m.executor.app<[number], { pid: number }>(file, "echo");
    const { pid } = await echo(1);
    await until(
      async () => ((await runtimePids(worker)).length === 0 ? true : undefined),
      "the idle runtime to end",
    );
    // The next call starts a runtime anew on the same worker (an idle one would have served it).
    expect((await echo(2)).pid).not.toBe(pid);
    await m.executor.shutdown();
    expect(await worker.exited).toBe(0);
  });

  it("runs a process per task with reuseRuntimes: false", async () => {
    const m = await manager({ reuseRuntimes: false });
    const file = await appFile();
    await m.worker(1);
    const echo = m.executor.app<[number], { i: number; pid: number }>(
      file,
      "echo",
    );
    const results = [await echo(1), await echo(2), await echo(3)];
    expect(results.map((r) => r.i)).toEqual([1, 2, 3]);
    expect(new Set(results.map((r) => r.pid)).size).toBe(3);
    await m.executor.shutdown();
  });

  it("retries only the task of a runtime killed under it; the others are unaffected", async () => {
    const m = await manager({ maxRetries: 1 });
    const file = await appFile();
    const dir = await tempDir("envpack-wq-block-");
    const { worker } = await m.worker(2);
    const block = m.executor.app<[string], number>(file, "block", {
      resources: { cores: 1 },
    });
    const echo = m.executor.app<[number], { i: number }>(file, "echo", {
      resources: { cores: 1 },
    });
    await expectOnlyKilledTaskRetried(m, block, echo, dir);
    await m.executor.shutdown();
    expect(await processesLeftUnder(worker.dir)).toEqual([]);
  });

  it("runs a killed worker's runtimes' tasks elsewhere", async () => {
    const m = await manager({});
    const file = await appFile();
    const a = await m.worker(1);
    const b = await m.worker(1);
    const sleep = m.executor.app<[number], number>(file, "sleep", {
      resources: { cores: 1 },
    });
    const calls = Array.from({ length: 6 }, () => sleep(800));
    // Kill the first worker once its runtime has joined and holds a task.
    await until(
      async () => ((await runtimePids(a.worker)).length > 0 ? true : undefined),
      "a runtime on the first worker",
    );
    process.kill(a.worker.pid, "SIGKILL");
    const pids = await Promise.all(calls);
    expect(pids).toHaveLength(6);
    const results = m.results();
    const lost = results.filter((r) => r.reason === "worker-lost");
    expect(lost.length).toBeGreaterThan(0);
    // Each lost task ran again, to the end, on the other worker.
    for (const task of lost)
      expect(
        results.find(
          (r) => r.id === task.id && r.attempt > task.attempt && r.ok,
        ),
      ).toMatchObject({ workerId: b.id });
    // The lost worker's orphaned runtime left with its connection.
    expect(await processesLeftUnder(a.worker.dir)).toEqual([]);
    await m.executor.shutdown();
    expect(await processesLeftUnder(b.worker.dir)).toEqual([]);
  });

  it("kills a warm runtime over its autolabel memory label and runs the task again larger", async () => {
    const m = await manager({ autolabel: true });
    const file = await appFile();
    await m.worker(2, 1000);
    const alloc = m.executor.app<[number, number], number>(file, "alloc", {
      name: "alloc",
    });
    // Measured on a whole worker: the label is about one runtime and a small task.
    await expectOverLabelRetried(m, alloc);
  });

  it("keeps an autolabel memory label at one task's peak over 50 tasks in one warm runtime", async () => {
    const m = await manager({ autolabel: true });
    const file = await appFile();
    await m.worker(2, 1000);
    const echo = m.executor.app<[number], { pid: number }>(file, "echo", {
      name: "base",
      resources: { cores: 1 },
    });
    // Unlabelled: after the first (on a whole worker) it runs with its category's label.
    const alloc = m.executor.app<[number, number], number>(file, "alloc", {
      name: "alloc",
    });
    await expectSteadyLabel(m, () => echo(0), alloc);
  });

  it("never serves a task of one bundle from another bundle's runtime", async () => {
    const one = await appFile(`${APP}\nexport const which = "one";\n`);
    const two = await appFile(`${APP}\nexport const which = "two";\n`);
    const [a, b] = await Promise.all([bundleOf(one), bundleOf(two)]);
    expect(a.digest).not.toBe(b.digest);
    // Idle runtimes stay while the other bundle is sent and unpacked, however long that takes.
    const h = await harness({ runtimeIdleMs: 600_000 });
    await startWorker({ port: h.port, cores: 2 });
    const worker = await h.nextWorker();
    const echo = (bundle: TaskBundle, i: number) =>
      h.run(
        { kind: "module", module: "", exportName: "echo", args: [i] },
        worker,
        { task: { bundle } },
      );
    const ran = [
      await echo(a, 1),
      await echo(b, 2),
      await echo(a, 3),
      await echo(b, 4),
    ].map((r) => {
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
      return r.value as { i: number; pid: number; env: string };
    });
    const [a1, b1, a2, b2] = ran as [
      (typeof ran)[0],
      (typeof ran)[0],
      (typeof ran)[0],
      (typeof ran)[0],
    ];
    // Warm: the same runtime served each bundle's two tasks; never the other's.
    expect(a2.pid).toBe(a1.pid);
    expect(b2.pid).toBe(b1.pid);
    expect(b1.pid).not.toBe(a1.pid);
    expect(b1.env).not.toBe(a1.env);
    expect(h.backend.runtimes()).toHaveLength(2);
  });

  it("refuses a runtime connection with a wrong or missing token; the real runtime still joins", async () => {
    // A node that waits on a FIFO before it starts: the runtime stays expected meanwhile.
    const bin = await tempDir("envpack-wq-bin-");
    const gate = join(bin, "gate");
    const { execa } = await import("execa");
    await execa("mkfifo", [gate]);
    await writeFile(
      join(bin, "node"),
      `#!/bin/sh\nread _ <${gate}\nexec ${process.execPath} "$@"\n`,
    );
    await chmod(join(bin, "node"), 0o755);
    const file = await appFile();
    const h = await harness();
    await startWorker({
      port: h.port,
      cores: 1,
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
    });
    const worker = await h.nextWorker();
    const task = h.run(
      { kind: "module", module: file, exportName: "echo", args: [7] },
      worker,
    );
    await until(
      () => (h.backend.runtimes().length > 0 ? true : undefined),
      "the runtime to be started",
    );
    const [expected] = h.backend.runtimes();
    const intruder = async (hello: object | undefined) => {
      const socket = createConnection({ host: "127.0.0.1", port: h.port });
      await once(socket, "connect");
      socket.write(`envpack-runtime 1 ${expected?.id}\n`);
      const [challenge] = (await once(socket, "data")) as [Buffer];
      expect(JSON.parse(challenge.toString())).toMatchObject({
        type: "challenge",
      });
      if (hello !== undefined) socket.write(`${JSON.stringify(hello)}\n`);
      else socket.end();
      await once(socket, "close");
      return h.nextWarning();
    };
    const wrong = await intruder({
      type: "hello",
      protocol: 1,
      answer: "00".repeat(32),
      pid: 1,
      restMB: 1,
    });
    expect(wrong).toMatchObject({ code: "ENVPACK_WARN_WQ_AUTH" });
    expect(wrong.message).toMatch(/wrong token/);
    const missing = await intruder({ type: "hello", protocol: 1, pid: 1 });
    expect(missing.message).toMatch(/wrong token/);
    // Let the real runtime start: it joins and runs the task.
    await writeFile(gate, "go\n");
    const result = await task;
    expect(result).toMatchObject({ ok: true, value: { i: 7 } });
    // Its token is spent: the same id is refused from now on.
    const socket = createConnection({ host: "127.0.0.1", port: h.port });
    await once(socket, "connect");
    socket.write(`envpack-runtime 1 ${expected?.id}\n`);
    await once(socket, "close");
    expect((await h.nextWarning()).message).toMatch(
      /no runtime .* is expected/,
    );
  });
});
