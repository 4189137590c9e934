// The Work Queue manager against real work_queue_worker processes on 127.0.0.1.

import { describe, expect, it } from "vitest";
import { startWorker } from "../../helpers/wq-worker.js";
import { harness } from "./harness.js";

describe("WorkQueueBackend with a real worker", () => {
  it("reports a joining worker with its resources and identity, and runs a command task", async () => {
    const h = await harness();
    await startWorker({ port: h.port, cores: 2, memory: 700, disk: 900 });
    const worker = await h.nextWorker();
    expect(worker.id).toMatch(/^worker-[0-9a-f]{32}$/);
    expect(worker.resources).toEqual({
      cores: 2,
      memory: 700,
      disk: 900,
      gpus: 0,
    });
    const result = await h.run(
      { kind: "command", shell: "echo hello; echo oops >&2" },
      worker,
    );
    expect(result).toMatchObject({
      ok: true,
      reason: "ok",
      value: { exitCode: 0, stdout: "hello\n" },
      workerId: worker.id,
    });
    // resource_monitor measured it.
    expect(result.usage.peakMemory).toBeGreaterThan(0);
    expect(result.usage.wallMs).toBeGreaterThan(0);
  });

  for (const monitor of [true, false])
    it(`tells a signal from an exit code (monitor: ${monitor})`, async () => {
      const h = await harness({ monitor });
      await startWorker({ port: h.port, cores: 2 });
      const worker = await h.nextWorker();
      const [exited, signaled, argv] = await Promise.all([
        h.run(
          { kind: "command", shell: "echo out; echo oops >&2; exit 11" },
          worker,
        ),
        h.run({ kind: "command", shell: "kill -SEGV $$" }, worker),
        h.run(
          { kind: "command", argv: ["printf", "%s|", "a b", "it's", "$HOME"] },
          worker,
        ),
      ]);
      expect(exited).toMatchObject({
        ok: false,
        reason: "exit",
        exitCode: 11,
        value: { exitCode: 11, stdout: "out\n" },
      });
      expect(exited.signal).toBeUndefined();
      expect(exited.stderrTail).toBe("oops");
      expect(signaled).toMatchObject({
        ok: false,
        reason: "signal",
        signal: "SIGSEGV",
      });
      expect(argv).toMatchObject({
        ok: true,
        value: { stdout: "a b|it's|$HOME|" },
      });
    });
});
