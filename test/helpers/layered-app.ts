// Layered bundles (format 3) of fixture apps for tests, written by the packer's own writer (the
// way a build writes them), and stored in a cache as a build records them.

import { join } from "node:path";
import { writeLayeredBundle } from "../../packer/index.js";
import { scan } from "../../src/api/index.js";
import { bundleKey } from "../../src/api/bundle-key.js";
import { planBundle } from "../../src/api/plan-bundle.js";
import type { Digest } from "../../src/core/index.js";
import { LocalStore } from "../../src/registry/index.js";

export type LayeredApp = Awaited<ReturnType<typeof writeLayeredBundle>> & {
  inputDigest: Digest;
};

/** Scans `entries` of the app at `cwd` and writes its layered bundle into `out`. */
export async function writeLayeredApp(
  entries: string[],
  cwd: string,
  out: string,
  options: { cacheDir: string; env?: string | undefined },
): Promise<LayeredApp> {
  const manifest = await scan({ entries, cwd, env: options.env });
  const plan = await planBundle(manifest, { cacheDir: options.cacheDir });
  try {
    const written = await writeLayeredBundle(
      manifest.kind,
      [...plan.leading, ...plan.entries],
      { outDir: out },
    );
    return { ...written, inputDigest: manifest.inputDigest as Digest };
  } finally {
    await plan.dispose();
  }
}

/**
 * Puts a layered bundle in a cache: each layer and the index as blobs, the index recorded under
 * the default bundle key of its input digest. Returns the key.
 */
export async function cacheLayeredApp(
  cacheDir: string,
  bundle: LayeredApp,
): Promise<Digest> {
  const store = new LocalStore(cacheDir);
  for (const layer of bundle.layers)
    await store.putFile(layer.path, layer.digest);
  const index = await store.putFile(bundle.path, bundle.digest);
  const key = bundleKey(bundle.inputDigest);
  await store.record({
    key,
    inputDigest: bundle.inputDigest,
    digest: bundle.digest,
    size: index.size,
    usedAt: Date.now(),
    meta: { format: "3", kind: "node" },
  });
  return key;
}

/** Where a layered bundle's blob lies in a cache. */
export const cachedBlob = (cacheDir: string, digest: Digest): string =>
  join(cacheDir, "blobs", "sha256", digest.slice("sha256:".length));
