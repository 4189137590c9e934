// The bundle cache of builds: which builder made a cached bundle, hits that are intact, new
// bundles recorded, and copies exported to `--out`.

import { copyFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import {
  hashFile,
  writeAtomic,
  type Digest,
  type Manifest,
  type OnEvent,
} from "../core/light.js";
import { BUNDLE_FORMAT } from "../../packer/light.js";
import type { LocalStore } from "../registry/light.js";
import { bundleKey, type BundleKeyOptions } from "./bundle-key.js";
import { dropDamagedBlob } from "./cache.js";
import { envpackVersion } from "./version.js";

const require = createRequire(import.meta.url);

/** A bundle the cache holds for a build: what it is known by and how big it is. */
export interface CachedBundle {
  digest: Digest;
  inputDigest: Digest;
  key: Digest;
  size: number;
  cached: boolean;
}

/** Options of {@link cacheHit}. */
export interface CacheHitOptions extends BundleKeyOptions {
  cacheDir: string;
  /** Set when the bundle is exported: its bytes are then hashed before they are handed out. */
  outDir?: string | undefined;
  onEvent?: OnEvent | undefined;
}

/**
 * What else decides a bundle's bytes besides its inputs: envpack's version and the zstd library
 * (STYLE §8). A cached bundle from another builder is rebuilt, not reused.
 */
export function builderIdentity(): string {
  const zstd = (require("zstd-napi/package.json") as { version: string })
    .version;
  return `envpack@${envpackVersion()} bundle-format@${BUNDLE_FORMAT} zstd-napi@${zstd}`;
}

/** The metadata a bundle built here is recorded and published with. */
export function builtMeta(kind: Manifest["kind"]): Record<string, string> {
  return {
    builder: builderIdentity(),
    format: String(BUNDLE_FORMAT),
    kind,
  };
}

/**
 * The cached bundle for an input digest built with these options, marked used, when it is still
 * there and this builder made it, or it was pulled from a registry in this bundle format. A
 * damaged one is dropped (`ENVPACK_WARN_CACHE_DAMAGED`) and missed.
 */
export async function cacheHit(
  store: LocalStore,
  inputDigest: Digest,
  options: CacheHitOptions,
): Promise<CachedBundle | null> {
  const key = bundleKey(inputDigest, options);
  const record = await store.lookup(key);
  const usable =
    record?.meta?.["builder"] === builderIdentity() ||
    (record?.meta?.["source"] === "registry" &&
      record.meta["format"] === String(BUNDLE_FORMAT));
  if (record === null || !usable) return null;
  // A hit never hands out bytes that do not match their digest: the size check is free; bytes
  // exported to --out are hashed.
  const size = await store.sizeOf(record.digest);
  if (size === null) return null;
  const intact =
    size === record.size &&
    (options.outDir === undefined ||
      (await hashFile(store.blobPath(record.digest))).digest === record.digest);
  if (!intact) {
    await dropDamagedBlob(options.cacheDir, record.digest);
    options.onEvent?.({
      type: "warn",
      code: "ENVPACK_WARN_CACHE_DAMAGED",
      message: `the cached bundle ${record.digest} is damaged; it was dropped and is built again`,
      data: { digest: record.digest, size, recordedSize: record.size },
    });
    return null;
  }
  await store.record({ ...record, usedAt: Date.now() });
  return {
    digest: record.digest,
    inputDigest,
    key,
    size: record.size,
    cached: true,
  };
}

/**
 * The path a build hands out for a cached bundle: the blob itself, or an atomic copy named
 * `<hex>.tar.zst` in `outDir` (resolved against `cwd`).
 */
export async function exportBundle(
  store: LocalStore,
  digest: Digest,
  outDir: string | undefined,
  cwd: string,
): Promise<string> {
  const blob = store.blobPath(digest);
  if (outDir === undefined) return blob;
  const path = join(
    resolve(cwd, outDir),
    `${digest.slice("sha256:".length)}.tar.zst`,
  );
  await writeAtomic(path, (temp) => copyFile(blob, temp));
  return path;
}
