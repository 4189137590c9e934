// A bundle's blobs between the cache and a registry: a layered bundle (format 3) is its index
// plus one blob per layer; a push sends, and a pull fetches, only the blobs the other side lacks.

import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Digest, OnEvent } from "../core/index.js";
import { layerBeside, readLayeredIndex } from "../../packer/index.js";
import type {
  LocalStore,
  PushEntry,
  Registry,
  RegistryEntry,
  RegistryLayer,
} from "../registry/index.js";
import { dropDamagedBlob } from "./cache.js";

/** Progress events and cancellation of a transfer. */
export interface Transfer {
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/** What a pull put in the cache: the bundle's blob, its layers, and the bytes downloaded. */
export interface FetchedBundle {
  digest: Digest;
  size: number;
  path: string;
  /** A layered bundle's layers, each with whether it was downloaded (false: the cache had it). */
  layers?: Array<RegistryLayer & { pulled: boolean }> | undefined;
  /** Bytes downloaded (blobs the cache already held count nothing). */
  transferred: number;
}

/**
 * The entry to push for a bundle file: a layered bundle's layers (read from its index, verified
 * against `entry.digest`) with the files beside it that hold them.
 * @throws IntegrityError when the index is damaged or a layer is not beside it
 */
export async function pushEntryFor(
  file: string,
  entry: RegistryEntry,
): Promise<PushEntry> {
  const rest: PushEntry = {
    digest: entry.digest,
    size: entry.size,
    inputDigest: entry.inputDigest,
    meta: entry.meta,
  };
  const index = await readLayeredIndex(file, entry.digest);
  if (index === undefined) return rest;
  const layers = [];
  for (const layer of index.layers)
    layers.push({ ...layer, file: await layerBeside(file, layer.digest) });
  return { ...rest, layers };
}

/**
 * A bundle in the cache, fetched from the registry where the cache lacks it: its blob, then
 * (a layered bundle) every layer its verified index lists that the cache does not hold. Every
 * blob downloaded is verified before it gets its name; layers are fetched before the caller
 * records the bundle, so no record names a bundle with a missing layer.
 */
export async function fetchBundle(
  store: LocalStore,
  registry: Registry,
  digest: Digest,
  transfer: Transfer,
): Promise<FetchedBundle> {
  const blob = await fetchBlob(store, registry, digest, transfer);
  const index = await readLayeredIndex(blob.path, digest);
  if (index === undefined)
    return {
      digest,
      size: blob.size,
      path: blob.path,
      transferred: blob.transferred,
    };
  let transferred = blob.transferred;
  const layers: Array<RegistryLayer & { pulled: boolean }> = [];
  for (const layer of index.layers) {
    // A layer the cache holds is checked by size here and by its digest when it is unpacked.
    if ((await store.sizeOf(layer.digest)) === layer.size) {
      layers.push({ ...layer, pulled: false });
      continue;
    }
    const got = await fetchBlob(store, registry, layer.digest, transfer);
    transferred += got.transferred;
    layers.push({ ...layer, pulled: true });
  }
  return { digest, size: blob.size, path: blob.path, layers, transferred };
}

/** A blob in the cache: already there (and intact), or downloaded, verified and moved in. */
async function fetchBlob(
  store: LocalStore,
  registry: Registry,
  digest: Digest,
  transfer: Transfer,
): Promise<{ size: number; path: string; transferred: number }> {
  if (await store.has(digest)) {
    // A damaged copy is dropped and downloaded again.
    try {
      const put = await store.putFile(store.blobPath(digest), digest);
      return { size: put.size, path: put.path, transferred: 0 };
    } catch (error) {
      if (
        (error as { code?: unknown }).code !==
        "ENVPACK_INTEGRITY_DIGEST_MISMATCH"
      )
        throw error;
      await dropDamagedBlob(store.root, digest);
    }
  }
  const dir = join(
    store.root,
    "tmp",
    `pull-${process.pid}-${randomBytes(6).toString("hex")}`,
  );
  await mkdir(dir, { recursive: true });
  try {
    const file = join(dir, "blob");
    // The pull verified the very bytes it wrote against the digest.
    await registry.pull(digest, file, transfer);
    const put = await store.putFile(file, digest, { hashedByWriter: true });
    return { size: put.size, path: put.path, transferred: put.size };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
