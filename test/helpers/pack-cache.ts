// What the executor's pack: true tests share: a bundle cache of the test's own (also as
// ENVPACK_CACHE_DIR), a local executor packing into it on one 1-core worker, and the bundles the
// cache then holds.

import { join } from "node:path";
import { vi } from "vitest";
import { Executor, cacheList } from "../../src/index.js";
import { tempDir } from "./temp-dir.js";

/** A fresh bundle cache for this test, also as ENVPACK_CACHE_DIR. */
export async function useCache(): Promise<string> {
  const cacheDir = join(await tempDir("envpack-exec-cache-"), "cache");
  vi.stubEnv("ENVPACK_CACHE_DIR", cacheDir);
  return cacheDir;
}

/** A local pack: true executor with one 1-core worker, its own work dir and cache. */
export async function packExecutor(): Promise<{
  executor: Executor;
  cacheDir: string;
}> {
  const cacheDir = await useCache();
  const executor = new Executor({
    pack: true,
    cacheDir,
    workDir: await tempDir("envpack-exec-work-"),
    workers: [{ cores: 1 }],
  });
  return { executor, cacheDir };
}

/** The hex digests of the bundles (indexes) in a cache. */
export async function bundlesIn(cacheDir: string): Promise<string[]> {
  return (await cacheList(cacheDir)).bundles.map((b) => b.digest.slice(7));
}
