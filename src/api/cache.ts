// The cache commands: list, remove and garbage-collect bundles (and their unpacked environments).

import { join } from "node:path";
import { rm } from "node:fs/promises";
import {
  IntegrityError,
  UsageError,
  hashFile,
  isDigest,
  type Digest,
} from "../core/light.js";
import { LocalStore, type BlobInfo } from "../registry/light.js";

/** Every cached bundle, most recently used first. */
export async function cacheList(cacheDir: string): Promise<BlobInfo[]> {
  return new LocalStore(cacheDir).list();
}

/**
 * Removes bundles and their unpacked environments.
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT for a malformed digest
 */
export async function cacheRemove(
  cacheDir: string,
  digests: string[],
): Promise<{ removed: Digest[]; missing: string[] }> {
  const store = new LocalStore(cacheDir);
  const removed: Digest[] = [];
  const missing: string[] = [];
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
    await rm(join(cacheDir, "envs", digest.slice(7)), {
      recursive: true,
      force: true,
    });
    if (await store.remove(digest)) removed.push(digest);
    else missing.push(digest);
  }
  return { removed, missing };
}

/**
 * Removes least recently used bundles until the cache's bundles total at most `maxBytes`, and
 * the temp directories of unpacks that were killed (never one a live process is writing).
 */
export async function cacheGc(
  cacheDir: string,
  maxBytes: number,
): Promise<{ removed: Digest[]; freed: number; kept: number }> {
  const result = await new LocalStore(cacheDir).gc(maxBytes);
  await Promise.all(
    result.removed.map((d) =>
      rm(join(cacheDir, "envs", d.slice(7)), { recursive: true, force: true }),
    ),
  );
  // The packer (tar, zstd) loads only here: a cache hit that finds a damaged blob needs it.
  const { removeStaleUnpacks } = await import("../../packer/index.js");
  await removeStaleUnpacks(join(cacheDir, "envs"));
  return result;
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
