// The bundle cache of builds: which builder made a cached bundle or layer, hits that are intact
// (the index and every layer), and copies exported to `--out`.

import { readFileSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import {
  IntegrityError,
  envpackPackageDir,
  hashFile,
  isDigest,
  isNotFound,
  writeAtomic,
  type Digest,
  type Manifest,
  type OnEvent,
} from "../core/light.js";
import {
  BUNDLE_FORMAT,
  packerCodeDigest,
  readLayeredIndex,
  type BundleIndex,
  type LayerRole,
} from "../../packer/light.js";
import type { LocalStore } from "../registry/light.js";
import { bundleKey, type BundleKeyOptions } from "./bundle-key.js";
import { dropDamagedBlob } from "./cache.js";
import { envpackVersion } from "./version.js";

const require = createRequire(import.meta.url);

/** One layer of a bundle a build handed out, and whether the cache had it. */
export interface BuiltLayer {
  role: LayerRole;
  digest: Digest;
  size: number;
  cached: boolean;
}

/** A bundle the cache holds for a build: what it is known by and how big it is. */
export interface CachedBundle {
  /** The index's digest: the bundle's. */
  digest: Digest;
  inputDigest: Digest;
  key: Digest;
  /** Bytes of the index and every layer it lists. */
  size: number;
  cached: boolean;
  layers: BuiltLayer[];
}

/** Options of {@link cacheHit}. */
export interface CacheHitOptions extends BundleKeyOptions {
  cacheDir: string;
  /** Set when the bundle is exported: its bytes are then hashed before they are handed out. */
  outDir?: string | undefined;
  onEvent?: OnEvent | undefined;
}

/** Where `npm run build` writes the digest of the packer's code (scripts/packer-digest.mjs). */
const PACKER_DIGEST_FILE = join("dist", "packer", "code-digest.json");

let identity: string | undefined;

/**
 * What else decides a bundle's bytes besides its inputs: envpack's version, the bundle format,
 * the digest of the code that packs (the packer, the planning and compiling api modules,
 * runtime/, the native .pyc hash: `npm run build` computes it) and the zstd and esbuild
 * libraries (STYLE §8). A cached bundle or layer from another builder is rebuilt, not reused.
 * Read once per process.
 */
export function builderIdentity(): string {
  if (identity !== undefined) return identity;
  const versionOf = (name: string) =>
    (require(`${name}/package.json`) as { version: string }).version;
  return (identity =
    `envpack@${envpackVersion()} bundle-format@${BUNDLE_FORMAT} ` +
    `packer@${packerDigest()} zstd-napi@${versionOf("zstd-napi")} esbuild@${versionOf("esbuild")}`);
}

/** The digest of the packer's code, as the build recorded it. */
function packerDigest(): string {
  const file = join(envpackPackageDir(), PACKER_DIGEST_FILE);
  let digest: unknown;
  try {
    ({ digest } = JSON.parse(readFileSync(file, "utf8")) as {
      digest: unknown;
    });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    // A tree compiled by plain `tsc`, without `npm run build`: the same digest, computed.
    digest = packerCodeDigest(envpackPackageDir());
  }
  if (typeof digest !== "string" || !isDigest(digest))
    throw new Error(`${file} holds no digest`);
  return digest.slice("sha256:".length, "sha256:".length + 16);
}

/** The metadata a bundle (or, with `layer`, one of its layers) built here is recorded with. */
export function builtMeta(
  kind: Manifest["kind"],
  layer?: LayerRole,
): Record<string, string> {
  return {
    builder: builderIdentity(),
    format: String(BUNDLE_FORMAT),
    kind,
    ...(layer === undefined ? {} : { layer }),
  };
}

/**
 * The cached bundle for an input digest built with these options, marked used, when its index
 * and every layer are still there and this builder made it, or it was pulled from a registry
 * in this bundle format. A damaged index or layer is dropped (`ENVPACK_WARN_CACHE_DAMAGED`) and
 * missed. A format-2 bundle cached by an older envpack is never found (its key differs): it is
 * rebuilt, with an `ENVPACK_WARN_CACHE_OLD_FORMAT` warning.
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
  if (record === null || !usable) {
    await warnOldFormat(store, inputDigest, options);
    return null;
  }
  const layers = await intactLayers(store, record.digest, record.size, options);
  if (layers === null) return null;
  await store.markUsed(record, Date.now());
  return {
    digest: record.digest,
    inputDigest,
    key,
    size: record.size + layers.reduce((sum, l) => sum + l.size, 0),
    cached: true,
    layers,
  };
}

/**
 * The layers of a cached index when the index and each layer are intact: sizes always, bytes
 * (hashed) when exported. The first damaged blob is dropped and warned about; then null.
 */
async function intactLayers(
  store: LocalStore,
  digest: Digest,
  recordedSize: number,
  options: CacheHitOptions,
): Promise<BuiltLayer[] | null> {
  const damaged = async (
    blob: Digest,
    size: number | null,
    expected: number,
  ) => {
    await dropDamagedBlob(options.cacheDir, blob);
    options.onEvent?.({
      type: "warn",
      code: "ENVPACK_WARN_CACHE_DAMAGED",
      message: `the cached ${blob === digest ? "bundle" : "layer"} ${blob} is damaged; it was dropped and is built again`,
      data: { digest: blob, size, recordedSize: expected },
    });
    return null;
  };
  const size = await store.sizeOf(digest);
  if (size === null) return null;
  if (size !== recordedSize) return damaged(digest, size, recordedSize);
  let index: BundleIndex | undefined;
  try {
    index = await readLayeredIndex(store.blobPath(digest), digest);
  } catch (error) {
    if (!(error instanceof IntegrityError)) throw error;
  }
  // Under this format's key, a blob that is no index is as damaged as one that fails its digest.
  if (index === undefined) return damaged(digest, size, recordedSize);
  for (const layer of index.layers) {
    const layerSize = await store.sizeOf(layer.digest);
    if (layerSize === null) return null;
    const intact =
      layerSize === layer.size &&
      (options.outDir === undefined ||
        (await hashFile(store.blobPath(layer.digest))).digest === layer.digest);
    if (!intact) return damaged(layer.digest, layerSize, layer.size);
  }
  return index.layers.map((l) => ({ ...l, cached: true }));
}

/** Says so when the cache holds this input's bundle in the format before layers. */
async function warnOldFormat(
  store: LocalStore,
  inputDigest: Digest,
  options: CacheHitOptions,
): Promise<void> {
  const old = await store.lookup(bundleKey(inputDigest, options, 2));
  if (old === null) return;
  options.onEvent?.({
    type: "warn",
    code: "ENVPACK_WARN_CACHE_OLD_FORMAT",
    message: `the cache holds this app's bundle ${old.digest} in bundle format 2; it is built again in format ${BUNDLE_FORMAT} (layers)`,
    data: { digest: old.digest, format: 2 },
  });
}

/**
 * A layer the cache holds under its layer key, made by this builder, with its recorded size
 * (its bytes are checked by whoever unpacks or exports it); marked used.
 */
export async function layerHit(
  store: LocalStore,
  key: Digest,
): Promise<{ digest: Digest; size: number } | null> {
  const record = await store.lookup(key);
  if (record === null || record.meta?.["builder"] !== builderIdentity())
    return null;
  if ((await store.sizeOf(record.digest)) !== record.size) return null;
  await store.markUsed(record, Date.now());
  return { digest: record.digest, size: record.size };
}

/**
 * The path a build hands out for a cached bundle: the index blob itself (its layers are blobs
 * beside it), or atomic copies in `outDir` (resolved against `cwd`): each layer as
 * `<hex>.tar.zst`, then the index as `<hex>.json`, whose path is returned.
 */
export async function exportBundle(
  store: LocalStore,
  bundle: { digest: Digest; layers: readonly { digest: Digest }[] },
  outDir: string | undefined,
  cwd: string,
): Promise<string> {
  const blob = store.blobPath(bundle.digest);
  if (outDir === undefined) return blob;
  const dir = resolve(cwd, outDir);
  const copy = async (digest: Digest, suffix: string) => {
    const path = join(dir, `${digest.slice("sha256:".length)}${suffix}`);
    await writeAtomic(path, (temp) => copyFile(store.blobPath(digest), temp));
    return path;
  };
  for (const layer of bundle.layers) await copy(layer.digest, ".tar.zst");
  return copy(bundle.digest, ".json");
}
