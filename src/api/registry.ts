// The registry use cases: push a cached bundle, pull one into the cache, and the lookup-or-publish
// steps `build --registry` uses.

import {
  InputError,
  UsageError,
  isDigest,
  isEnvpackError,
  type Digest,
  type OnEvent,
} from "../core/light.js";
import { BUNDLE_FORMAT } from "../../packer/index.js";
import { bundleKey } from "./bundle-key.js";
import {
  fetchBundle,
  pushEntryFor,
  type FetchedBundle,
  type Transfer,
} from "./bundle-transfer.js";
import { verifyCachedBlob } from "./cache.js";
import { withCacheHold } from "./cache-hold.js";
import {
  LocalRegistry,
  LocalStore,
  openRegistry,
  type Registry,
  type RegistryCredentials,
  type RegistryEntry,
  type RegistryLayer,
} from "../registry/index.js";

export type { RegistryCredentials };

/** Which registry, and how to reach it (see `loadConfig`). */
export interface RegistryOptions {
  /** `oci://host[:port]/repository`, `file:///dir` or a directory path. */
  url: string;
  /** Plain HTTP for an `oci://` registry. */
  insecure?: boolean | undefined;
  /**
   * An `oci://` operation gives up (ENVPACK_REMOTE_UNREACHABLE) once no byte has moved for this
   * many ms, whatever retries it has left (default 120000).
   */
  deadlineMs?: number | undefined;
  credentials?: RegistryCredentials | undefined;
}

/** Options of {@link push}. */
export interface PushOptions {
  digest: string;
  registry: RegistryOptions;
  cacheDir: string;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/** What {@link push} published. */
export interface PushResult {
  digest: Digest;
  /** The input digests of the builds it is now found under. */
  inputDigests: Digest[];
  /** The bundle keys (input digest + byte-changing build options) it is now found under. */
  keys: Digest[];
  size: number;
  registry: string;
  /** A layered bundle's layers (format 3); absent for a single-blob bundle. */
  layers?: RegistryLayer[] | undefined;
  /** Bytes uploaded: blobs the registry already held (shared layers) are not sent again. */
  sentBytes: number;
}

/**
 * Publishes a bundle of the cache, under every bundle key the cache knows it for.
 * @throws UsageError (bad digest or URL), InputError ENVPACK_INPUT_ENTRY_NOT_FOUND (not in the
 *   cache, or built without an input digest), RemoteError, IntegrityError
 *   ENVPACK_INTEGRITY_DIGEST_MISMATCH (the cached blob is damaged: it is dropped)
 */
export async function push(options: PushOptions): Promise<PushResult> {
  const digest = checkDigest(options.digest, "DIGEST");
  const registry = open(options.registry);
  // A `cache gc` waits: it would remove blobs while they are read.
  return withCacheHold(options.cacheDir, options.signal, () =>
    withRegistryHold(registry, options.signal, () =>
      pushHeld(digest, registry, options),
    ),
  );
}

async function pushHeld(
  digest: Digest,
  registry: Registry,
  options: PushOptions,
): Promise<PushResult> {
  const store = new LocalStore(options.cacheDir);
  const blob = (await store.list()).find((b) => b.digest === digest);
  if (blob === undefined || blob.inputs.length === 0) {
    throw new InputError(
      "ENVPACK_INPUT_ENTRY_NOT_FOUND",
      blob === undefined
        ? `bundle ${digest} is not in the cache ${options.cacheDir}`
        : `bundle ${digest} has no input digest recorded in the cache`,
      {
        hint: "Build it here first (`envpack build ...`), or pull it (`envpack pull`).",
      },
    );
  }
  // Only verified bytes leave the cache; a damaged blob is dropped here, not sent.
  await verifyCachedBlob(options.cacheDir, digest);
  const inputDigests = new Set<Digest>();
  let sentBytes = 0;
  let layers: RegistryLayer[] | undefined;
  for (const key of blob.keys) {
    const record = await store.lookup(key);
    if (record === null) continue;
    const entry = await pushEntryFor(blob.path, {
      digest,
      size: blob.size,
      inputDigest: key,
      meta: { ...stringMeta(record.meta), inputDigest: record.inputDigest },
    });
    const report = await registry.push(blob.path, entry, {
      onEvent: options.onEvent,
      signal: options.signal,
    });
    sentBytes += report.bytes;
    layers = entry.layers?.map(({ digest, size, role }) => ({
      digest,
      size,
      role,
    }));
    inputDigests.add(record.inputDigest);
  }
  return {
    digest,
    inputDigests: [...inputDigests],
    keys: blob.keys,
    size: blob.size,
    registry: registry.displayUrl,
    ...(layers === undefined ? {} : { layers }),
    sentBytes,
  };
}

/** Options of {@link pull}: a bundle digest, or the input digest it was built from. */
export interface PullOptions {
  digest?: string | undefined;
  inputDigest?: string | undefined;
  registry: RegistryOptions;
  cacheDir: string;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/** What {@link pull} put in the cache. */
export interface PullResult {
  digest: Digest;
  inputDigest: Digest | null;
  path: string;
  size: number;
  registry: string;
  /** A layered bundle's layers, each with whether it was downloaded (false: the cache had it). */
  layers?: Array<RegistryLayer & { pulled: boolean }> | undefined;
  /** Bytes downloaded: blobs the cache already held count nothing. */
  transferred: number;
}

/**
 * Pulls a bundle into the cache, verified against its digest (nothing is cached otherwise); of
 * a layered bundle, only the layers the cache lacks are downloaded, each verified.
 * With `inputDigest`, the bundle built from it with default options (zstd level 3, no prune,
 * builtin engine) is pulled and recorded, so a build of that input is a cache hit.
 * @throws UsageError, InputError ENVPACK_INPUT_ENTRY_NOT_FOUND (the registry has no such bundle),
 *   RemoteError, IntegrityError ENVPACK_INTEGRITY_DIGEST_MISMATCH
 */
export async function pull(options: PullOptions): Promise<PullResult> {
  if ((options.digest === undefined) === (options.inputDigest === undefined))
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      "give a bundle DIGEST or --input INPUT_DIGEST, not both or neither",
      { hint: "e.g. `envpack pull --input sha256:… --registry oci://…`." },
    );
  const registry = open(options.registry);
  // A `cache gc` waits: it would remove layers between their check and the record naming them.
  return withCacheHold(options.cacheDir, options.signal, () =>
    withRegistryHold(registry, options.signal, () =>
      pullHeld(registry, options),
    ),
  );
}

async function pullHeld(
  registry: Registry,
  options: PullOptions,
): Promise<PullResult> {
  const store = new LocalStore(options.cacheDir);
  const transfer = { onEvent: options.onEvent, signal: options.signal };
  if (options.inputDigest !== undefined) {
    const inputDigest = checkDigest(options.inputDigest, "--input");
    const entry = await registry.lookup(bundleKey(inputDigest), transfer);
    if (entry === null) throw notInRegistry(registry, `input ${inputDigest}`);
    const pulled = await pullEntry(
      store,
      registry,
      entry,
      inputDigest,
      transfer,
    );
    return { ...pulled, inputDigest, registry: registry.displayUrl };
  }
  const digest = checkDigest(options.digest as string, "DIGEST");
  if (!(await registry.has(digest, transfer)))
    throw notInRegistry(registry, `bundle ${digest}`);
  const put = await fetchBundle(store, registry, digest, transfer);
  return { ...put, inputDigest: null, registry: registry.displayUrl };
}

/**
 * The bundle a registry holds for a bundle key, pulled into the cache and recorded there (with the
 * input digest it was built from), when its bundle format is this envpack's; else null (a miss).
 */
export async function pullForInput(
  store: LocalStore,
  registry: Registry,
  build: { key: Digest; inputDigest: Digest },
  transfer: Transfer,
): Promise<{ digest: Digest; size: number } | null> {
  return withRegistryHold(registry, transfer.signal, async () => {
    const entry = await registry.lookup(build.key, transfer);
    if (entry === null || entry.meta["format"] !== String(BUNDLE_FORMAT))
      return null;
    const { digest, size } = await pullEntry(
      store,
      registry,
      entry,
      build.inputDigest,
      transfer,
    );
    return { digest, size };
  });
}

/**
 * Publishes a freshly built bundle (a layered one with its layers, found beside its index, of
 * which only those the registry lacks are sent). A failure does not fail the build: it is
 * reported as a `warn` event (ENVPACK_WARN_REGISTRY_PUSH) and returned.
 */
export async function publish(
  registry: Registry,
  file: string,
  entry: RegistryEntry,
  transfer: Transfer,
): Promise<
  { pushed: true } | { pushed: false; pushError: Record<string, unknown> }
> {
  try {
    const pushed = await pushEntryFor(file, entry);
    await withRegistryHold(registry, transfer.signal, () =>
      registry.push(file, pushed, transfer),
    );
    return { pushed: true };
  } catch (error) {
    transfer.signal?.throwIfAborted();
    if (!isEnvpackError(error)) throw error;
    transfer.onEvent?.({
      type: "warn",
      code: "ENVPACK_WARN_REGISTRY_PUSH",
      message: `built, but not published to ${registry.displayUrl}: ${error.message}`,
      data: { code: error.code },
    });
    return { pushed: false, pushError: error.toJSON() };
  }
}

/**
 * Runs `body` holding a directory registry as a build holds the cache (cache-hold.ts): a `cache
 * gc` of that directory then removes no blob between a push's blobs and the record naming them,
 * nor between a lookup and the pulls that follow it. An OCI registry is used as it is.
 */
function withRegistryHold<T>(
  registry: Registry,
  signal: AbortSignal | undefined,
  body: () => Promise<T>,
): Promise<T> {
  return registry instanceof LocalRegistry
    ? withCacheHold(registry.root, signal, body)
    : body();
}

/** Opens the registry of the options. */
export function open(options: RegistryOptions): Registry {
  return openRegistry(options.url, {
    insecure: options.insecure,
    deadlineMs: options.deadlineMs,
    credentials: options.credentials,
  });
}

async function pullEntry(
  store: LocalStore,
  registry: Registry,
  entry: RegistryEntry,
  inputDigest: Digest,
  transfer: Transfer,
): Promise<FetchedBundle> {
  const put = await fetchBundle(store, registry, entry.digest, transfer);
  await store.record({
    key: entry.inputDigest,
    inputDigest,
    digest: put.digest,
    size: put.size,
    usedAt: Date.now(),
    meta: { ...entry.meta, source: "registry" },
    ...(put.layers === undefined
      ? {}
      : {
          layers: put.layers.map(({ digest, size, role }) => ({
            digest,
            size,
            role,
          })),
        }),
  });
  return put;
}

function notInRegistry(registry: Registry, what: string): InputError {
  return new InputError(
    "ENVPACK_INPUT_ENTRY_NOT_FOUND",
    `the registry ${registry.displayUrl} has no ${what}`,
    {
      hint: "Build it with `envpack build ... --registry URL` (which publishes it), or check the digest and repository.",
    },
  );
}

function checkDigest(value: string, what: string): Digest {
  if (!isDigest(value))
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `${what} must be sha256:<64 hex digits>, got ${JSON.stringify(value)}`,
      { hint: "Copy it from `envpack build --json` or `envpack cache ls`." },
    );
  return value;
}

function stringMeta(
  meta: Record<string, unknown> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(meta ?? {}))
    if (typeof value === "string") out[key] = value;
  return out;
}
