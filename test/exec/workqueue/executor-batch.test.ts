// Short command tasks in batches through the Executor on real work_queue_workers: a worker killed
// with SIGKILL mid-batch loses no task, and its lost attempts are not failed ones.

import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../helpers/temp-dir.js";
import { startWorker } from "../../helpers/wq-worker.js";
import { manager } from "./executor-harness.js";

/** Resolves once `path` exists (a task says how far it got). */
async function appears(path: string): Promise<void> {
  while (!existsSync(path)) await new Promise((r) => setImmediate(r));
}

describe("Executor batches on Work Queue workers", () => {
  it.each([false, true])(
    "runs every task of a batch whose worker is killed mid-batch on another worker; the lost attempts are no failures (monitor: %s)",
    async (monitor) => {
      const dir = await tempDir("envpack-wq-batch-lost-");
      const go = join(dir, "go");
      const where = join(dir, "where");
      await writeFile(go, "");
      const m = await manager({ monitor });
      const tasks = 8;
      try {
        const first = await startWorker({ port: m.port, cores: 1 });
        await m.workers(1);
        // Without `go` a task says where it runs and waits for it; with `go` it ends at once.
        const app = m.executor.command(
          `[ -e '${go}' ] || { pwd >'${where}.tmp'; mv '${where}.tmp' '${where}'; ` +
            `while [ ! -e '${go}' ]; do sleep 0.05; done; }; echo ok`,
          { resources: { cores: 1 } },
        );
        // Three short runs: the category batches from now on.
        for (let i = 0; i < 3; i++)
          expect(await app()).toEqual({ exitCode: 0, stdout: "ok\n" });
        await rm(go);
        const calls = Array.from({ length: tasks }, () => app());
        await appears(where);
        // The first member of a batch (its directory b1 in the batch's sandbox t.N) is running.
        expect((await readFile(where, "utf8")).trim()).toMatch(/\/t\.\d+\/b1$/);
        process.kill(first.pid, "SIGKILL");
        await writeFile(go, "");
        await startWorker({ port: m.port, cores: 1 });
        for (const result of await Promise.all(calls))
          expect(result).toEqual({ exitCode: 0, stdout: "ok\n" });
      } finally {
        await m.executor.shutdown();
      }
      const [a, b] = m.joinedIds();
      const attempts = m
        .results()
        .map((e) => e.result)
        .filter((r) => r.attempt > 0 || r.reason === "worker-lost");
      // maxRetries is 0: a lost attempt counted as a failed one would have ended its task.
      const lost = attempts.filter((r) => r.reason === "worker-lost");
      expect(lost.length).toBeGreaterThan(1);
      for (const r of lost) expect([r.workerId, r.attempt]).toEqual([a, 0]);
      const retried = attempts.filter((r) => r.reason !== "worker-lost");
      expect(retried).toHaveLength(lost.length);
      for (const r of retried)
        expect([r.workerId, r.reason, r.attempt]).toEqual([b, "ok", 1]);
    },
  );
});
