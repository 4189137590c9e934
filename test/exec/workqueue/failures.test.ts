// What goes wrong with real workers: a worker killed mid-task, a task over its memory label, a
// wrong password, a newer protocol, a canceled task and a shutdown (nothing left behind).

import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { workerPath } from "../../helpers/min-path.js";
import { tempDir } from "../../helpers/temp-dir.js";
import {
  processesLeftUnder,
  processesUnder,
  startWorker,
} from "../../helpers/wq-worker.js";
import { harness } from "./harness.js";

const ALLOC = `python3 -c "import time; b=bytearray(300<<20); time.sleep(3)"`;

describe("WorkQueueBackend failures", () => {
  it("resolves the tasks of a worker killed mid-run as worker-lost and reports it gone at once", async () => {
    // No keepalive in time: the connection itself must close (tasks do not keep it open).
    const h = await harness({ keepaliveMs: 600_000 });
    const started = await startWorker({ port: h.port, cores: 2 });
    const worker = await h.nextWorker();
    const tasks = [
      h.run({ kind: "command", shell: "echo started; sleep 60" }, worker),
      h.run({ kind: "command", shell: "sleep 60" }, worker),
    ];
    // Both running: a later task taking no core has come back.
    const ran = await h.run({ kind: "command", shell: "true" }, worker, {
      label: { cores: 0 },
    });
    expect(ran.ok).toBe(true);
    const gone = h.left(worker.id);
    process.kill(started.pid, "SIGKILL");
    await gone;
    for (const result of await Promise.all(tasks))
      expect(result).toMatchObject({ ok: false, reason: "worker-lost" });
    expect(h.workers.has(worker.id)).toBe(false);
  });

  it("drops a worker that stops answering (keepalive), its tasks worker-lost", async () => {
    const h = await harness({ keepaliveMs: 300 });
    const started = await startWorker({ port: h.port, cores: 1 });
    const worker = await h.nextWorker();
    const task = h.run({ kind: "command", shell: "sleep 60" }, worker);
    const gone = h.left(worker.id);
    process.kill(started.pid, "SIGSTOP");
    await gone;
    expect(await task).toMatchObject({ ok: false, reason: "worker-lost" });
    expect(h.events).toContainEqual(
      expect.objectContaining({ code: "ENVPACK_WARN_WQ_WORKER_SILENT" }),
    );
  });

  it("kills a task over its memory label with resource_monitor: over-resources, with the peak measured", async () => {
    const h = await harness();
    await startWorker({ port: h.port, cores: 2 });
    const worker = await h.nextWorker();
    const over = await h.run({ kind: "command", shell: ALLOC }, worker, {
      label: { memory: 50 },
    });
    expect(over).toMatchObject({
      ok: false,
      reason: "over-resources",
      exceeded: "memory",
    });
    expect(over.usage.peakMemory).toBeGreaterThan(50);
    const within = await h.run(
      { kind: "command", shell: "python3 -c 'b=bytearray(30<<20)'" },
      worker,
      { label: { memory: 200 } },
    );
    expect(within).toMatchObject({ ok: true, reason: "ok" });
  });

  it("resolves a task whose resource_monitor dies under it as worker-lost (it runs again), not as the program's signal", async () => {
    const h = await harness();
    await startWorker({ port: h.port, cores: 1 });
    const worker = await h.nextWorker();
    // The program's parent is the monitor, which does not catch SIGSEGV; the monitor's death
    // kills the program (its parent-death signal).
    const lost = await h.run(
      { kind: "command", shell: "kill -SEGV $PPID; exec sleep 30" },
      worker,
    );
    expect(lost).toMatchObject({
      ok: false,
      reason: "worker-lost",
      error: {
        message:
          "resource_monitor died of SIGSEGV on the worker before it wrote its summary",
      },
    });
    expect(lost.signal).toBeUndefined();
    const again = await h.run({ kind: "command", shell: "echo again" }, worker);
    expect(again).toMatchObject({ ok: true, value: { stdout: "again\n" } });
  });

  it("runs anyway without any resource_monitor, and says once that limits are not enforced", async () => {
    // This manager ships none, and the worker's PATH has none.
    const h = await harness({ resourceMonitor: null });
    await startWorker({
      port: h.port,
      cores: 2,
      env: { PATH: await workerPath() },
    });
    const worker = await h.nextWorker();
    const results = await Promise.all(
      ["a", "b", "c"].map((x) =>
        h.run({ kind: "command", shell: `echo ${x}` }, worker),
      ),
    );
    expect(results.map((r) => r.value)).toEqual([
      { exitCode: 0, stdout: "a\n" },
      { exitCode: 0, stdout: "b\n" },
      { exitCode: 0, stdout: "c\n" },
    ]);
    const warnings = h.events.filter((e) => e.type === "warn");
    expect(warnings.map((w) => w.type === "warn" && w.code)).toEqual([
      "ENVPACK_WARN_WQ_UNMONITORED",
    ]);
  });

  it("refuses a worker with the wrong password, and takes one with the right file (newline included)", async () => {
    const dir = await tempDir("envpack-wq-pw-");
    const right = join(dir, "right");
    const wrong = join(dir, "wrong");
    await writeFile(right, "s3cret\n");
    await writeFile(wrong, "s3cret");
    const h = await harness({ password: right });
    await startWorker({ port: h.port, cores: 1, password: wrong });
    const warning = await h.nextWarning();
    expect(warning.code).toBe("ENVPACK_WARN_WQ_AUTH");
    expect(warning.message).toMatch(/wrong password/);
    await startWorker({ port: h.port, cores: 1, password: right });
    const worker = await h.nextWorker();
    const result = await h.run({ kind: "command", shell: "echo in" }, worker);
    expect(result).toMatchObject({ ok: true, value: { stdout: "in\n" } });
    // A worker without a password is refused too.
    await startWorker({ port: h.port, cores: 1 });
    // (The refused worker keeps retrying, and is refused again meanwhile.)
    for (;;) {
      const next = await h.nextWarning();
      expect(next.code).toBe("ENVPACK_WARN_WQ_AUTH");
      if (/needs a password/.test(next.message)) break;
      expect(next.message).toMatch(/wrong password/);
    }
  });

  it("refuses a protocol 11 greeting with a clear message and closes", async () => {
    const h = await harness();
    const socket = connect(h.port, "127.0.0.1");
    await once(socket, "connect");
    socket.write(
      "workqueue 11 node7 Linux x86_64 7.5.0\ninfo worker-id worker-x\n",
    );
    const warning = await h.nextWarning();
    expect(warning.code).toBe("ENVPACK_WARN_WQ_PROTOCOL");
    expect(warning.message).toMatch(/protocol 11.*protocol 9/);
    socket.resume();
    await once(socket, "close");
    expect(h.workers.size).toBe(0);
  });

  it("kills a canceled task on its worker without waiting for it, and leaves no process behind after shutdown", async () => {
    const h = await harness();
    const started = await startWorker({ port: h.port, cores: 2 });
    const worker = await h.nextWorker();
    const controller = new AbortController();
    const long = h.run({ kind: "command", shell: "sleep 300" }, worker, {
      signal: controller.signal,
    });
    const other = h.run({ kind: "command", shell: "sleep 300" }, worker);
    // Once a later task (taking no core) has come back, both long ones are running.
    const probe = await h.run({ kind: "command", shell: "true" }, worker, {
      label: { cores: 0 },
    });
    expect(probe.ok).toBe(true);
    expect((await processesUnder(started.dir)).length).toBeGreaterThan(0);
    controller.abort();
    expect(await long).toMatchObject({ ok: false, reason: "canceled" });
    await h.backend.shutdown();
    expect(await other).toMatchObject({ ok: false, reason: "canceled" });
    // A worker it did not start is released; with --single-shot it then exits.
    expect(await started.exited).toBe(0);
    expect(await processesLeftUnder(started.dir)).toEqual([]);
  });
});
