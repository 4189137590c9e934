// pack: true end to end with the real LocalBackend: the exec-tasks fixture app (which imports the
// npm package ms) is scanned, built, unpacked once per worker and run with the bundle's node, and
// keeps running from the bundle once the host's node_modules are gone, the cache held until
// shutdown; a Python app runs with the Conda bundle's interpreter.

import { readdir, realpath, rename } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { Executor, cacheList, type EnvpackEvent } from "../../src/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { prefixOfTree } from "../helpers/layered-app.js";
import { bundlesIn, useCache } from "../helpers/pack-cache.js";
import { tempDir } from "../helpers/temp-dir.js";

/** What the fixture's runtimeInfo task reports. */
interface RuntimeInfo {
  execPath: string;
  dependency: string;
  pid: number;
  cwd: string;
}

/** How many layers the first bundle in a cache lists. */
async function layerCount(cacheDir: string): Promise<number> {
  return (await cacheList(cacheDir)).bundles[0]?.layers.length ?? 0;
}

/** How many unpacks (of layers) started: each emits one unpack progress event at 0 bytes. */
function unpacks(events: EnvpackEvent[]): number {
  return events.filter(
    (e) => e.type === "build:progress" && e.phase === "unpack" && e.bytes === 0,
  ).length;
}

function packs(events: EnvpackEvent[]): number {
  return events.filter((e) => e.type === "build:progress" && e.phase === "pack")
    .length;
}

/** Per worker, the most tasks it was running at once. */
function peakConcurrency(events: EnvpackEvent[]): Map<string, number> {
  const now = new Map<string, number>();
  const peak = new Map<string, number>();
  for (const e of events) {
    if (e.type !== "task:state" || e.workerId === undefined) continue;
    const delta = e.state === "running" ? 1 : e.state === "queued" ? 0 : -1;
    const count = (now.get(e.workerId) ?? 0) + delta;
    now.set(e.workerId, count);
    peak.set(e.workerId, Math.max(peak.get(e.workerId) ?? 0, count));
  }
  return peak;
}

/** The workers that ran a task to completion. */
function workersUsed(events: EnvpackEvent[]): Set<string> {
  const ids = new Set<string>();
  for (const e of events)
    if (e.type === "task:state" && e.state === "done" && e.workerId)
      ids.add(e.workerId);
  return ids;
}

describe("Executor pack: true (local backend)", () => {
  it("runs a module app importing a real npm package from the bundle with the bundle's node, unpacked once per worker", async () => {
    const app = await appCopy("exec-tasks");
    const cacheDir = await useCache();
    const workDir = await tempDir("envpack-exec-work-");
    const entry = join(app, "src", "tasks.ts");
    const events: EnvpackEvent[] = [];
    const executor = new Executor({
      pack: true,
      cacheDir,
      workDir,
      workers: [{ cores: 2 }, { cores: 2 }],
      onEvent: (event) => events.push(event),
    });
    let infos: RuntimeInfo[];
    try {
      const info = executor.app<[], RuntimeInfo>(entry, "runtimeInfo", {
        resources: { cores: 1 },
      });
      const usesDep = executor.app<[string], number>(entry, "usesDep", {
        resources: { cores: 1 },
      });
      const calls = Array.from({ length: 12 }, () => info());
      expect(await usesDep("90s")).toBe(90_000);
      infos = await Promise.all(calls);
    } finally {
      await executor.shutdown();
    }
    const [hex, ...others] = await bundlesIn(cacheDir);
    expect(others).toEqual([]);
    const workers = workersUsed(events);
    const envs = new Set(
      [...workers].map((w) => join(workDir, w, "envs", hex as string)),
    );
    for (const ran of infos) {
      expect(ran.execPath).not.toBe(process.execPath);
      const env = [...envs].find((dir) => ran.execPath.startsWith(dir + sep));
      expect(env, ran.execPath).toBeDefined();
      expect(ran.execPath).toBe(join(env as string, "bin", "node"));
      // The package's directory is one link to the packages layer's: node reports its real path.
      expect(
        await realpath(
          join(env as string, "app", "node_modules", "ms", "index.js"),
        ),
      ).toBe(ran.dependency);
    }
    // Thirteen tasks placed at once, two at a time on each worker while its unpack was under way:
    // still one unpack of each layer per worker.
    expect([...peakConcurrency(events)].sort()).toEqual([
      ["local-1", 2],
      ["local-2", 2],
    ]);
    expect(workers).toEqual(new Set(["local-1", "local-2"]));
    expect(unpacks(events)).toBe(2 * (await layerCount(cacheDir)));
    for (const worker of workers) {
      const entries = await readdir(join(workDir, worker, "envs"));
      expect(
        entries.filter((e) => !e.endsWith(".lock") && e !== "layers"),
      ).toEqual([hex]);
    }
  });

  it("a new Executor hits the build cache, and its tasks keep running from the bundle with the host's node_modules gone", async () => {
    const app = await appCopy("exec-tasks");
    const cacheDir = await useCache();
    const entry = join(app, "src", "tasks.ts");
    const firstEvents: EnvpackEvent[] = [];
    const first = new Executor({
      pack: true,
      cacheDir,
      workDir: await tempDir("envpack-exec-work-"),
      onEvent: (event) => firstEvents.push(event),
    });
    const marks = async () =>
      (await readdir(join(cacheDir, "holds"))).filter((name) =>
        name.startsWith(`${process.pid}-`),
      );
    try {
      expect(await first.app(entry, "usesDep")("1s")).toBe(1000);
      // Held until shutdown (a cache gc waits), as the bundle may still be shipped to workers.
      expect(await marks()).toHaveLength(1);
    } finally {
      await first.shutdown();
    }
    expect(await marks()).toEqual([]);
    expect(packs(firstEvents)).toBeGreaterThan(0);
    const bundles = await bundlesIn(cacheDir);
    expect(bundles).toHaveLength(1);

    const events: EnvpackEvent[] = [];
    // A fresh process per task: every call below loads `ms` anew.
    const second = new Executor({
      pack: true,
      cacheDir,
      workDir: await tempDir("envpack-exec-work-"),
      reuseRuntimes: false,
      onEvent: (event) => events.push(event),
    });
    try {
      const info = second.app<[], RuntimeInfo>(entry, "runtimeInfo");
      const usesDep = second.app<[string], number>(entry, "usesDep");
      const before = await info();
      await rename(join(app, "node_modules"), join(app, "node_modules.gone"));
      expect(await usesDep("2m")).toBe(120_000);
      const after = await info();
      expect(after.pid).not.toBe(before.pid);
      expect(after.execPath).toBe(before.execPath);
      expect(after.execPath).not.toBe(process.execPath);
      expect(after.dependency).toBe(before.dependency);
      expect(after.dependency.startsWith(app + sep)).toBe(false);
    } finally {
      await second.shutdown();
    }
    // The second executor packed nothing: a cache hit, the same single bundle.
    expect(packs(events)).toBe(0);
    expect(await bundlesIn(cacheDir)).toEqual(bundles);
  });

  it("runs a Python app with the Conda bundle's interpreter, not the fixture prefix's", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const app = await appCopy("exec-tasks");
    const cacheDir = await useCache();
    const workDir = await tempDir("envpack-exec-work-");
    const executor = new Executor({ pack: true, cacheDir, workDir });
    try {
      const file = join(app, "src", "tasks.py");
      const echo = executor.pythonApp(file, "echo", { env: conda.prefix });
      const info = executor.pythonApp<
        [],
        { executable: string; prefix: string }
      >(file, "runtime_info", { env: conda.prefix });
      expect(await echo({ a: [1, "two", null] })).toEqual({
        a: [1, "two", null],
      });
      const ran = await info();
      const [hex] = await bundlesIn(cacheDir);
      const env = join(workDir, "local-1", "envs", hex as string);
      // Python runs from the bundle's tree; its prefix is the relocated base of the Conda
      // layers, which that tree links to.
      expect(ran.executable.startsWith(env + sep)).toBe(true);
      expect(ran.prefix).toBe(await prefixOfTree(env));
      expect(dirname(ran.prefix)).toBe(
        join(workDir, "local-1", "envs", "bases"),
      );
    } finally {
      await executor.shutdown();
    }
  });
});
