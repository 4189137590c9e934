// The cache hold: builds share the cache directory, gc and `cache rm` take it alone; each side
// waits for the other, and the marks of processes that are gone keep nobody waiting.

import { spawnSync } from "node:child_process";
import { watch } from "node:fs";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cacheGc, pull, push, run } from "../../src/api/index.js";
import {
  HOLDS_DIR,
  holdCache,
  withCacheExclusive,
} from "../../src/api/cache-hold.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Resolves once a name `matches` is in `dir` (watched, then listed, so none is missed). */
function appears(dir: string, matches: (name: string) => boolean) {
  let close = () => {};
  const seen = new Promise<void>((resolve, reject) => {
    const watcher = watch(dir, (_event, file) => {
      if (file !== null && matches(file)) resolve();
    });
    watcher.on("error", reject);
    close = () => watcher.close();
    readdir(dir).then((names) => {
      if (names.some(matches)) resolve();
    }, reject);
  });
  return seen.finally(() => close());
}

const ABSENT = `sha256:${"a".repeat(64)}`;

/**
 * Starts each use while a gc holds `dir`, and lists in order when the gc ended and how each use
 * did. Each looks for a bundle the cache and registry lack: it fails, once it holds `dir` (were it
 * not held, it would end first). No mark is left under `dir` afterwards.
 */
async function duringGc(
  dir: string,
  uses: Record<string, () => Promise<unknown>>,
): Promise<string[]> {
  const holds = join(dir, HOLDS_DIR);
  const order: string[] = [];
  for (const [name, use] of Object.entries(uses)) {
    let using: Promise<unknown> | undefined;
    await withCacheExclusive(dir, async () => {
      const tried = appears(holds, (n) => n.endsWith(".build"));
      using = use().then(
        () => order.push(`${name} ended`),
        (error: { code?: string }) => order.push(`${name} ${error.code}`),
      );
      await Promise.race([tried, using]);
      order.push(`gc done before ${name}`);
    });
    await using;
  }
  expect(await readdir(holds)).toEqual([]);
  return order;
}

const deadPid = () => spawnSync(process.execPath, ["-e", "0"]).pid as number;

describe("the cache hold", () => {
  it("a build that starts while gc runs goes on once gc is done", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const holds = join(cacheDir, HOLDS_DIR);
    const order: string[] = [];
    let holding: Promise<unknown> | undefined;
    await withCacheExclusive(cacheDir, async () => {
      const tried = appears(holds, (n) => n.endsWith(".build"));
      holding = holdCache(cacheDir).then(async (hold) => {
        order.push("build holds");
        await hold.release();
      });
      // The build wrote its mark, so it has seen the gc's lock (or will, and back off).
      await tried;
      order.push("gc done");
    });
    await holding;
    expect(order).toEqual(["gc done", "build holds"]);
    expect(await readdir(holds)).toEqual([]);
  });

  it("gc that starts while a build holds the cache waits for its release", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const holds = join(cacheDir, HOLDS_DIR);
    const order: string[] = [];
    const hold = await holdCache(cacheDir);
    const locked = appears(holds, (n) => n === "gc.lock");
    const collecting = withCacheExclusive(cacheDir, async () => {
      order.push("gc runs");
    });
    await locked;
    order.push("build releases");
    await hold.release();
    await collecting;
    expect(order).toEqual(["build releases", "gc runs"]);
  });

  it("a hold taken inside another goes on while a gc waits for the outer one", async () => {
    // A build inside a `pack: true` Executor's hold, or a registry that is the cache directory:
    // waiting for the gc, which waits for the outer hold, would wait forever.
    const cacheDir = join(await tempDir(), "cache");
    const holds = join(cacheDir, HOLDS_DIR);
    const order: string[] = [];
    const outer = await holdCache(cacheDir);
    const gc = withCacheExclusive(cacheDir, async () => {
      order.push("gc runs");
    });
    await appears(holds, (n) => n === "gc.lock");
    const inner = await holdCache(cacheDir);
    order.push("inner holds");
    await inner.release();
    await inner.release();
    order.push("inner released");
    // One mark for both, kept until the outer hold is released.
    expect(
      (await readdir(holds)).filter((n) => n.endsWith(".build")),
    ).toHaveLength(1);
    await outer.release();
    await gc;
    expect(order).toEqual(["inner holds", "inner released", "gc runs"]);
    expect(await readdir(holds)).toEqual([]);
  });

  it("run, push and pull wait for a running gc, holding the cache as a build does", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const registry = { url: join(await tempDir(), "registry") };
    expect(
      await duringGc(cacheDir, {
        run: () => run({ bundle: ABSENT, command: ["true"], cacheDir }),
        push: () => push({ digest: ABSENT, registry, cacheDir }),
        pull: () => pull({ digest: ABSENT, registry, cacheDir }),
      }),
    ).toEqual([
      "gc done before run",
      "run ENVPACK_INPUT_ENTRY_NOT_FOUND",
      "gc done before push",
      "push ENVPACK_INPUT_ENTRY_NOT_FOUND",
      "gc done before pull",
      "pull ENVPACK_INPUT_ENTRY_NOT_FOUND",
    ]);
  });

  it("push and pull into a directory registry wait for a gc of that directory, holding it", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const registryDir = join(await tempDir(), "registry");
    const registry = { url: registryDir };
    // `cache gc --cache-dir REGISTRY_DIR`: it would remove a pushed blob before its record.
    expect(
      await duringGc(registryDir, {
        push: () => push({ digest: ABSENT, registry, cacheDir }),
        pull: () => pull({ digest: ABSENT, registry, cacheDir }),
      }),
    ).toEqual([
      "gc done before push",
      "push ENVPACK_INPUT_ENTRY_NOT_FOUND",
      "gc done before pull",
      "pull ENVPACK_INPUT_ENTRY_NOT_FOUND",
    ]);
  });

  it("marks and locks of processes that are gone keep nobody waiting", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const holds = join(cacheDir, HOLDS_DIR);
    await mkdir(holds, { recursive: true });
    const mark = `${deadPid()}-1-0a1b2c.build`;
    await writeFile(join(holds, mark), "");
    await cacheGc(cacheDir, 0);
    expect(await readdir(holds)).toEqual([]);

    await mkdir(join(holds, "gc.lock"));
    await writeFile(join(holds, "gc.lock", "pid"), `${deadPid()}\n`);
    const hold = await holdCache(cacheDir);
    await hold.release();
    expect(await readdir(holds)).toEqual(["gc.lock"]);
    // The next gc takes the dead one's lock over.
    await cacheGc(cacheDir, 0);
    await expect(stat(join(holds, "gc.lock"))).rejects.toMatchObject({
      code: "ENOENT",
    });
  });
});
