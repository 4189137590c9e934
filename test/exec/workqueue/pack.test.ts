// pack: true on real workers that have only sh, tar, zstd and coreutils: the bundle brings node
// or python, travels once per worker connection and is unpacked once per connection, in the
// worker's workspace (gone when the worker leaves).

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { build } from "../../../src/api/index.js";
import type { TaskBundle } from "../../../src/core/index.js";
import { pathExists } from "../../../src/core/index.js";
import { appCopy } from "../../helpers/app-copy.js";
import { workerPath } from "../../helpers/min-path.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { startWorker } from "../../helpers/wq-worker.js";
import { harness } from "./harness.js";

/** What probe() reports about where it ran. */
interface Probe {
  env: string;
  execPath: string;
  marker: string;
  cwd: string;
}

const PROBE = `
import { statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

/** Where the task ran, and which unpack of its bundle it saw (the completion marker's inode and ctime). */
export async function probe(ms) {
  await delay(ms);
  const env = process.env.ENVPACK_ENV;
  const s = statSync(join(env, ".envpack", "complete"), { bigint: true });
  return { env, execPath: process.execPath, marker: s.ino + ":" + s.ctimeNs, cwd: process.cwd() };
}

export function fail(message) {
  throw new Error(message);
}
`;

async function bundleOf(
  entry: string,
  env?: string,
): Promise<TaskBundle & { size: number }> {
  const cacheDir = join(await tempDir("envpack-wq-cache-"), "cache");
  const built = await build({
    entries: [entry],
    env,
    cwd: join(entry, ".."),
    cacheDir,
  });
  return {
    digest: built.digest,
    path: built.path,
    kind: built.kind,
    size: built.size,
  };
}

/** A worker whose whole environment is a PATH of sh, tar, zstd and coreutils. */
async function bareWorker(port: number, cores: number) {
  return startWorker({
    port,
    cores,
    env: { PATH: await workerPath() },
  });
}

describe("pack: true on Work Queue workers", () => {
  it("runs a module app with the bundle's node; the bundle is sent once and unpacked once per worker", async () => {
    const dir = await tempDir("envpack-wq-probe-");
    const entry = join(dir, "probe.mjs");
    await writeFile(entry, PROBE);
    const bundle = await bundleOf(entry);
    const h = await harness();
    const started = [await bareWorker(h.port, 2), await bareWorker(h.port, 2)];
    const workers = [await h.nextWorker(), await h.nextWorker()];
    const run = (worker: (typeof workers)[number], ms: number) =>
      h.run(
        { kind: "module", module: "", exportName: "probe", args: [ms] },
        worker,
        { task: { bundle } },
      );
    // Twice as many tasks as slots at once (two of them while the first unpack is under way),
    // then more after it.
    const first = await Promise.all(
      workers.flatMap((w) => [run(w, 200), run(w, 0), run(w, 0), run(w, 0)]),
    );
    const later = await Promise.all(workers.map((w) => run(w, 0)));
    const failed = await h.run(
      { kind: "module", module: "", exportName: "fail", args: ["boom"] },
      workers[0] as (typeof workers)[number],
      { task: { bundle } },
    );
    const results = [...first, ...later];
    for (const r of results)
      expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    // A layered bundle (format 3): its index, with its layers each a cached file of its own.
    const bundleName = `${bundle.digest.slice("sha256:".length)}.json`;
    const snapshot = h.backend.snapshot();
    for (const w of workers) {
      const ran = results
        .filter((r) => r.workerId === w.id)
        .map((r) => r.value as Probe);
      expect(ran).toHaveLength(5);
      // One unpack: every task saw the same completion marker of the same directory.
      expect(new Set(ran.map((p) => `${p.env} ${p.marker}`)).size).toBe(1);
      const env = (ran[0] as Probe).env;
      expect(ran.every((p) => p.execPath === join(env, "bin", "node"))).toBe(
        true,
      );
      const stats = snapshot.workers.find((s) => s.id === w.id);
      expect(stats?.puts[bundleName]).toBe(1);
      expect(stats?.bytesSent).toBeLessThan(bundle.size * 1.5);
      expect(stats?.bytesSent).toBeGreaterThan(bundle.size);
    }
    const envs = results.map((r) => (r.value as Probe).env);
    expect(new Set(envs).size).toBe(2);
    // An app's error comes back with its stack, as locally.
    expect(failed).toMatchObject({
      ok: false,
      reason: "exit",
      error: { name: "Error", message: "boom" },
    });
    expect(failed.error?.stack).toContain("probe.mjs");
    // The unpacked environments live in the workers' workspaces: gone when they leave.
    await h.backend.shutdown();
    await Promise.all(started.map((w) => w.exited));
    for (const env of new Set(envs)) expect(await pathExists(env)).toBe(false);
  });

  it("says clearly that a module app without pack needs node on the worker", async () => {
    const dir = await tempDir("envpack-wq-probe-");
    const entry = join(dir, "probe.mjs");
    await writeFile(entry, PROBE);
    const h = await harness();
    await bareWorker(h.port, 1);
    const worker = await h.nextWorker();
    const result = await h.run(
      { kind: "module", module: entry, exportName: "probe", args: [0] },
      worker,
    );
    expect(result).toMatchObject({
      ok: false,
      reason: "exit",
      error: { name: "ToolMissing" },
    });
    expect(result.error?.message).toMatch(
      /node is not installed on the worker: module apps without pack: true/,
    );
  });

  it("runs a Python app with the Conda bundle's python", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const app = await appCopy("exec-tasks");
    const bundle = await bundleOf(join(app, "src", "tasks.py"), conda.prefix);
    const h = await harness();
    await bareWorker(h.port, 1);
    const worker = await h.nextWorker();
    const [echo, info] = await Promise.all([
      h.run(
        {
          kind: "python",
          file: "",
          functionName: "echo",
          args: [{ a: [1, "two", null] }],
        },
        worker,
        { task: { bundle } },
      ),
      h.run(
        { kind: "python", file: "", functionName: "runtime_info", args: [] },
        worker,
        { task: { bundle } },
      ),
    ]);
    expect(echo).toMatchObject({ ok: true, value: { a: [1, "two", null] } });
    const ran = info.value as { executable: string; prefix: string };
    // Python runs from the bundle's tree; its prefix is the relocated base of the Conda layers.
    expect(ran.executable).toMatch(/envpack\/envs\/[0-9a-f]{64}\/bin\/python/);
    expect(ran.prefix).toMatch(/envpack\/envs\/bases\/[0-9a-f]{64}$/);
  });
});
