// Writing a layered bundle: entries split by their layer, each layer a deterministic tar.zst,
// and the index naming them, written last (a reader never finds an index without its layers).

import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { digestOf, writeAtomic, type Digest } from "../../src/core/light.js";
import {
  openBundleWriter,
  type BundleEntry,
  type BundleWriterOptions,
} from "../write-bundle.js";
import {
  LAYERED_BUNDLE_FORMAT,
  LAYER_ROLES,
  encodeBundleIndex,
  type BundleIndex,
  type LayerRef,
  type LayerRole,
} from "./bundle-index.js";

/** A bundle's entries by layer, in role order; roles without entries are left out. */
export function splitLayers(
  entries: readonly BundleEntry[],
): Array<[LayerRole, BundleEntry[]]> {
  const byRole = new Map<LayerRole, BundleEntry[]>();
  for (const entry of entries) {
    const role = entry.layer ?? "app";
    const list = byRole.get(role) ?? [];
    list.push(entry);
    byRole.set(role, list);
  }
  return LAYER_ROLES.filter((r) => byRole.has(r)).map((r) => [
    r,
    byRole.get(r) as BundleEntry[],
  ]);
}

/**
 * Writes one layer's entries as `<hex>.tar.zst` in `options.outDir` (see openBundleWriter for
 * what decides the bytes).
 */
export async function writeLayer(
  role: LayerRole,
  entries: readonly BundleEntry[],
  options: BundleWriterOptions,
): Promise<LayerRef & { path: string }> {
  const writer = openBundleWriter(options);
  try {
    writer.add([...entries]);
    const written = await writer.finish();
    return {
      role,
      digest: written.digest,
      size: written.size,
      path: written.path,
    };
  } finally {
    await writer.abort();
  }
}

/**
 * Writes an index atomically as `<hex><suffix>` in `dir` (suffix `.json` by default; a cache
 * names blobs by bare hex).
 * @returns its digest (the bundle's), path and size
 */
export async function writeBundleIndex(
  index: BundleIndex,
  dir: string,
  suffix = ".json",
): Promise<{ digest: Digest; path: string; size: number }> {
  const bytes = encodeBundleIndex(index);
  const digest = digestOf(bytes);
  const path = join(dir, `${digest.slice("sha256:".length)}${suffix}`);
  await writeAtomic(path, (temp) => writeFile(temp, bytes));
  return { digest, path, size: bytes.length };
}

/**
 * Writes a whole layered bundle into `outDir`: each layer as `<hex>.tar.zst`, then the index.
 * Layers already in `outDir` are written again (same bytes); a build with a layer cache writes
 * only the layers it misses, with {@link writeLayer}.
 */
export async function writeLayeredBundle(
  kind: BundleIndex["kind"],
  entries: readonly BundleEntry[],
  options: BundleWriterOptions,
): Promise<{
  digest: Digest;
  path: string;
  index: BundleIndex;
  layers: Array<LayerRef & { path: string }>;
}> {
  const layers: Array<LayerRef & { path: string }> = [];
  for (const [role, list] of splitLayers(entries))
    layers.push(await writeLayer(role, list, options));
  const index: BundleIndex = {
    format: LAYERED_BUNDLE_FORMAT,
    kind,
    layers: layers.map(({ role, digest, size }) => ({ role, digest, size })),
  };
  const written = await writeBundleIndex(index, options.outDir);
  return { digest: written.digest, path: written.path, index, layers };
}
