// The cache commands: list, remove and garbage-collect bundles and their layers (and their
// unpacked environments). A layer is one blob however many bundles list it.

import type { Stats } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  IntegrityError,
  UsageError,
  hashFile,
  isDigest,
  isNotFound,
  namesIfPresent,
  processRuns,
  tempWriterPid,
  type Digest,
} from "../core/light.js";
import {
  LAYER_ROLES,
  LAYERS_DIR,
  readLayeredIndex,
  type BundleIndex,
  type LayerRef,
  type LayerRole,
} from "../../packer/light.js";
import { LocalStore, type BlobInfo } from "../registry/light.js";
import { withCacheExclusive } from "./cache-hold.js";
import type { MemoBytes } from "./cache-memo.js";

/** A bundle in the cache: a format-3 index with its layers, or a format-2 single blob. */
export interface CachedBundleInfo extends BlobInfo {
  format: 2 | 3;
  /** Its layers (format 3), in assembly order, each also listed once in `layers`. */
  layers: LayerRef[];
  /** Bytes of the index and its layers (the blob alone for format 2). */
  bytes: number;
}

/** A layer in the cache, listed once however many bundles use it. */
export interface CachedLayerInfo extends BlobInfo {
  role: LayerRole | null;
  /** Digests of the cached bundles that list it (none: a layer kept for the next build). */
  bundles: Digest[];
}

/** What {@link cacheList} finds. */
export interface CacheListing {
  /** Most recently used first. */
  bundles: CachedBundleInfo[];
  layers: CachedLayerInfo[];
  /** Bytes of every blob, each counted once. */
  bytes: number;
  /**
   * Files and bytes of the build's and scan's memo stores (fingerprints, scan results, compiled
   * files, package-trees records), apart from `bytes`.
   */
  memo: MemoBytes;
}

/** Every cached bundle and layer, most recently used first, and what the memo stores hold. */
export async function cacheList(cacheDir: string): Promise<CacheListing> {
  const { memoUsage } = await import("./cache-memo.js");
  return { ...(await listBlobs(cacheDir)), memo: await memoUsage(cacheDir) };
}

async function listBlobs(
  cacheDir: string,
): Promise<Omit<CacheListing, "memo">> {
  const store = new LocalStore(cacheDir);
  const blobs = await store.list();
  const indexes = new Map<Digest, BundleIndex>();
  for (const blob of blobs) {
    const index = await readIndexBlob(blob);
    if (index !== undefined) indexes.set(blob.digest, index);
  }
  const users = new Map<Digest, BlobInfo[]>();
  for (const [digest, index] of indexes)
    for (const layer of index.layers) {
      const list = users.get(layer.digest) ?? [];
      list.push(blobs.find((b) => b.digest === digest) as BlobInfo);
      users.set(layer.digest, list);
    }
  const bundles: CachedBundleInfo[] = [];
  const layers: CachedLayerInfo[] = [];
  for (const blob of blobs) {
    const index = indexes.get(blob.digest);
    const usedBy = users.get(blob.digest) ?? [];
    const role = await layerRoleOf(store, blob);
    if (index !== undefined) {
      const present = index.layers.filter((l) =>
        blobs.some((b) => b.digest === l.digest),
      );
      bundles.push({
        ...blob,
        format: 3,
        layers: index.layers,
        bytes: blob.size + present.reduce((sum, l) => sum + l.size, 0),
      });
    } else if (usedBy.length > 0 || role !== null) {
      layers.push({
        ...blob,
        role:
          role ??
          [...indexes.values()]
            .flatMap((i) => i.layers)
            .find((l) => l.digest === blob.digest)?.role ??
          null,
        bundles: usedBy.map((b) => b.digest),
        // A layer is as recently used as the newest bundle that lists it.
        usedAt: Math.max(blob.usedAt, ...usedBy.map((b) => b.usedAt)),
      });
    } else {
      bundles.push({ ...blob, format: 2, layers: [], bytes: blob.size });
    }
  }
  layers.sort((a, b) => b.usedAt - a.usedAt);
  return {
    bundles,
    layers,
    bytes: blobs.reduce((sum, b) => sum + b.size, 0),
  };
}

/**
 * Removes bundles and their unpacked environments, with each of their layers no other cached
 * bundle lists (and its unpacked copy).
 * Waits for the builds, runs, pushes and pulls using the cache directory to return, as
 * {@link cacheGc} does.
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT for a malformed digest, or a layer that a cached
 *   bundle lists (remove the bundle instead)
 * @throws InputError ENVPACK_INPUT_CACHE_LOCKED when a build, run, push or pull holds the cache
 *   for 10 minutes
 */
export async function cacheRemove(
  cacheDir: string,
  digests: string[],
): Promise<{ removed: Digest[]; missing: string[]; layers: Digest[] }> {
  for (const digest of digests) {
    if (!isDigest(digest)) {
      throw new UsageError(
        "ENVPACK_USAGE_BAD_ARGUMENT",
        `not a bundle digest: ${digest}`,
        {
          hint: "Digests look like sha256:<64 hex>; `envpack cache ls` lists them.",
        },
      );
    }
  }
  // A build running meanwhile keeps what it checked until it returns: rm waits for it.
  return withCacheExclusive(cacheDir, () => removeBundles(cacheDir, digests));
}

async function removeBundles(
  cacheDir: string,
  digests: string[],
): Promise<{ removed: Digest[]; missing: string[]; layers: Digest[] }> {
  const listing = await listBlobs(cacheDir);
  for (const digest of digests) {
    const layer = listing.layers.find((l) => l.digest === digest);
    if (layer !== undefined && layer.bundles.length > 0)
      throw new UsageError(
        "ENVPACK_USAGE_BAD_ARGUMENT",
        `${digest} is a layer of ${layer.bundles.length} cached bundle(s), not a bundle`,
        {
          hint: `Remove the bundles that list it (e.g. \`envpack cache rm ${layer.bundles[0]}\`); its last one takes it along.`,
          details: { layer: digest, bundles: layer.bundles },
        },
      );
  }
  const store = new LocalStore(cacheDir);
  const removed: Digest[] = [];
  const missing: string[] = [];
  const gone = new Set(digests);
  const layers: Digest[] = [];
  for (const digest of digests as Digest[]) {
    await rm(join(cacheDir, "envs", digest.slice(7)), {
      recursive: true,
      force: true,
    });
    if (await store.remove(digest)) removed.push(digest);
    else missing.push(digest);
    const bundle = listing.bundles.find((b) => b.digest === digest);
    for (const layer of bundle?.layers ?? []) {
      const info = listing.layers.find((l) => l.digest === layer.digest);
      if (info === undefined || info.bundles.some((b) => !gone.has(b)))
        continue;
      if (layers.includes(layer.digest)) continue;
      await removeLayer(store, layer.digest);
      layers.push(layer.digest);
    }
  }
  return { removed, missing, layers };
}

/** What {@link cacheGc} removed and kept. */
export interface GcResult {
  removed: Digest[];
  layers: Digest[];
  freed: number;
  kept: number;
  memo: MemoBytes;
}

/**
 * Removes least recently used bundles (with the layers only they list) and layers no bundle
 * lists, until the cache's blobs total at most `maxBytes`, each blob counted once. A layer a
 * kept bundle lists is never removed. The memo stores do not count against `maxBytes`: an entry
 * goes once it was last used before the least recently used blob kept (every entry when none
 * is), with entries of retired formats and package-trees records of projects that are gone.
 * Also removes what killed unpacks and writers left (never what a live process is writing).
 * Waits for the builds, runs, pushes and pulls using the cache directory to return, and those
 * starting meanwhile wait for gc (see holdCache).
 * @returns the bundles and layers removed, blob bytes freed and kept, memo files and bytes removed
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT for a negative or non-finite size
 * @throws InputError ENVPACK_INPUT_CACHE_LOCKED when a build, run, push or pull holds the cache
 *   for 10 minutes
 */
export async function cacheGc(
  cacheDir: string,
  maxBytes: number,
): Promise<GcResult> {
  if (!Number.isFinite(maxBytes) || maxBytes < 0) {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `--max-size must be a non-negative size, got ${maxBytes}`,
    );
  }
  // A build running meanwhile keeps what it checked until it returns: gc waits for it.
  return withCacheExclusive(cacheDir, () => collect(cacheDir, maxBytes));
}

async function collect(cacheDir: string, maxBytes: number): Promise<GcResult> {
  const store = new LocalStore(cacheDir);
  const listing = await listBlobs(cacheDir);
  let total = listing.bytes;
  const removed: Digest[] = [];
  const layers: Digest[] = [];
  const kept = new Set(listing.bundles.map((b) => b.digest));
  const sizeOf = new Map(listing.layers.map((l) => [l.digest, l.size]));
  const units = [
    ...listing.bundles.map((b) => ({ ...b, isBundle: true })),
    ...listing.layers
      .filter((l) => l.bundles.length === 0)
      .map((l) => ({ ...l, isBundle: false })),
  ].sort((a, b) => a.usedAt - b.usedAt);
  const listedByKept = (layer: Digest) =>
    listing.bundles.some(
      (b) => kept.has(b.digest) && b.layers.some((l) => l.digest === layer),
    );
  for (const unit of units) {
    if (total <= maxBytes) break;
    if (!unit.isBundle) {
      await removeLayer(store, unit.digest);
      layers.push(unit.digest);
      total -= unit.size;
      continue;
    }
    kept.delete(unit.digest);
    await store.remove(unit.digest);
    await rm(join(cacheDir, "envs", unit.digest.slice(7)), {
      recursive: true,
      force: true,
    });
    removed.push(unit.digest);
    total -= unit.size;
    for (const layer of "layers" in unit ? unit.layers : []) {
      const size = sizeOf.get(layer.digest);
      if (size === undefined || layers.includes(layer.digest)) continue;
      if (listedByKept(layer.digest)) continue;
      await removeLayer(store, layer.digest);
      layers.push(layer.digest);
      total -= size;
    }
  }
  const keptUse = [...listing.bundles, ...listing.layers]
    .filter((b) => !removed.includes(b.digest) && !layers.includes(b.digest))
    .map((b) => b.usedAt);
  const [{ lastUseOf, pruneMemo, removeDeadTemps }, { isOrphanedTreeRecord }] =
    await Promise.all([
      import("./cache-memo.js"),
      import("./package-edits.js"),
    ]);
  const horizon = keptUse.length === 0 ? Infinity : Math.min(...keptUse);
  const memo = await pruneMemo(cacheDir, horizon, isOrphanedTreeRecord);
  await pruneRuntimes(join(cacheDir, RUNTIMES_DIR), horizon, lastUseOf);
  await store.pruneRecords();
  await removeDeadTemps(join(cacheDir, "tmp"));
  // The packer (tar, zstd) loads only here: a cache hit that finds a damaged blob needs it.
  const { removeStaleUnpacks, BASES_DIR } =
    await import("../../packer/index.js");
  await removeStaleUnpacks(join(cacheDir, "envs"));
  await removeStaleUnpacks(join(cacheDir, "envs", LAYERS_DIR));
  await removeStaleUnpacks(join(cacheDir, "envs", BASES_DIR));
  return {
    removed,
    layers,
    freed: listing.bytes - total,
    kept: total,
    memo,
  };
}

/** The Node runtimes `--node`/`--platform` builds fetched: `node-<version>-<platform>/` each. */
const RUNTIMES_DIR = "runtimes";

/**
 * Removes the fetched Node runtimes last used before `horizon` (Unix ms; a runtime's last use is
 * its node binary's, which packing it reads: see lastUseOf), any without a binary (a runtime
 * found there is used as it is, so a broken one would never be fetched again), and fetches whose
 * process is gone. A build that needs a removed runtime fetches it again: the same binary.
 */
async function pruneRuntimes(
  dir: string,
  horizon: number,
  lastUseOf: (info: Stats) => number,
): Promise<void> {
  const names = await namesIfPresent(dir);
  for (const name of names) {
    const path = join(dir, name);
    const pid = tempWriterPid(name);
    if (pid !== undefined) {
      if (!processRuns(pid)) await rm(path, { recursive: true, force: true });
      continue;
    }
    if (!name.startsWith("node-")) continue;
    const binary = await statIfPresent(
      join(path, name.includes("-win-") ? "node.exe" : join("bin", "node")),
    );
    if (binary === null || lastUseOf(binary) < horizon)
      await rm(path, { recursive: true, force: true });
  }
}

async function statIfPresent(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/**
 * A layer's blob, its records and its unpacked copy (read-only), with the relocated bases that
 * link to that copy.
 */
async function removeLayer(store: LocalStore, digest: Digest): Promise<void> {
  await store.remove(digest);
  const { removeBasesOf, removeTree } = await import("../../packer/index.js");
  const envs = join(store.root, "envs");
  await removeBasesOf(envs, new Set([digest.slice(7)]));
  await removeTree(join(envs, LAYERS_DIR, digest.slice(7)));
}

/**
 * The index a blob holds, when it is one (verified against its name); else undefined, as for a
 * blob removed since it was listed (by another gc or `cache rm`).
 */
async function readIndexBlob(blob: BlobInfo): Promise<BundleIndex | undefined> {
  try {
    return await readLayeredIndex(blob.path, blob.digest);
  } catch (error) {
    if (error instanceof IntegrityError || isNotFound(error)) return undefined;
    throw error;
  }
}

/** The role a layer was recorded with by the build that made it, or null. */
async function layerRoleOf(
  store: LocalStore,
  blob: BlobInfo,
): Promise<LayerRole | null> {
  for (const key of blob.keys) {
    const role = (await store.lookup(key))?.meta?.["layer"];
    if (
      typeof role === "string" &&
      (LAYER_ROLES as readonly string[]).includes(role)
    )
      return role as LayerRole;
  }
  return null;
}

/**
 * Drops a cached bundle found damaged (its bytes do not hash to its digest): the blob, every index
 * record pointing at it and its unpacked environment, so the next build rebuilds it.
 */
export async function dropDamagedBlob(
  cacheDir: string,
  digest: Digest,
): Promise<void> {
  await rm(join(cacheDir, "envs", digest.slice(7)), {
    recursive: true,
    force: true,
  });
  await new LocalStore(cacheDir).remove(digest);
}

/**
 * Hashes a cached blob; when it does not match its digest, drops it ({@link dropDamagedBlob}) and
 * throws.
 * @throws IntegrityError ENVPACK_INTEGRITY_DIGEST_MISMATCH naming the blob
 */
export async function verifyCachedBlob(
  cacheDir: string,
  digest: Digest,
): Promise<void> {
  const path = new LocalStore(cacheDir).blobPath(digest);
  const actual = await hashFile(path);
  if (actual.digest === digest) return;
  await dropDamagedBlob(cacheDir, digest);
  throw new IntegrityError(
    "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
    `the cached bundle ${digest} is damaged: its bytes hash to ${actual.digest}`,
    {
      hint: "It was dropped from the cache; build it again (`envpack build ...`).",
      details: { expected: digest, actual: actual.digest, path },
    },
  );
}

/** Parses `500M`, `2G`, `1.5GiB`, `1024` (bytes) into bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!match) {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `not a size: '${text}'`,
      {
        hint: "Use a number of bytes or a suffix: 500M, 2G.",
      },
    );
  }
  const power = " kmgt".indexOf((match[2] ?? "").toLowerCase() || " ");
  return Math.floor(Number(match[1]) * 1024 ** power);
}
