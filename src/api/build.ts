// The build use case: manifest (scanned, or read from a file) → cache hit, or a new bundle in the
// cache (and a registry). Fingerprints, the bundle cache, planning and manifest loading live in
// modules of their own.

import { join, resolve, sep } from "node:path";
import { randomBytes } from "node:crypto";
import {
  removeIfPresent,
  writeFailure,
  type Digest,
  type Manifest,
  type OnEvent,
} from "../core/light.js";
import type {
  BundleWriter,
  LayerRole,
  PackThread,
} from "../../packer/index.js";
import { LocalStore } from "../registry/light.js";
import {
  fingerprintKey,
  readFingerprint,
  writeFingerprint,
} from "./build-fingerprint.js";
import { openBuildWrites, type BuildWrites } from "./build-writes.js";
import { bundleKey } from "./bundle-key.js";
import { withCacheHold } from "./cache-hold.js";
import {
  builderIdentity,
  builtMeta,
  cacheHit,
  exportBundle,
  layerHit,
  type BuiltLayer,
} from "./bundle-cache.js";
import { hostNodeRuntimeKey, layerKeys } from "./layer-keys.js";
import type { RegistryOptions } from "./registry.js";

/** Options of {@link build}. */
export interface BuildOptions {
  /** Entry files to scan; or give `manifest`. */
  entries?: string[] | undefined;
  /** A manifest file written by `envpack scan -o`. */
  manifest?: string | undefined;
  /** Conda prefix for Python entries. */
  env?: string | undefined;
  cwd?: string | undefined;
  /** The cache directory (blobs, index, unpacked environments). */
  cacheDir: string;
  /** Also place a copy of the bundle in this directory. */
  outDir?: string | undefined;
  /** Node: the Node version the bundle carries (default: this machine's), fetched from the npm registry. */
  node?: string | undefined;
  /** Node: the platform the bundle targets, `<os>-<arch>` (default: this machine's). */
  platform?: string | undefined;
  /** Conda: keep only the packages the scan found, their `depends` closure and the interpreter. */
  prune?: boolean | undefined;
  /** Conda: `builtin` (default) or `conda-pack` (a conda-pack on PATH packs, envpack repacks). */
  engine?: "builtin" | "conda-pack" | undefined;
  /** Ship only the import graph's closure (the scan option `onlyImported`). */
  onlyImported?: boolean | undefined;
  /** Trace a run of the app (the scan option `trace`); the command is part of the fingerprint key. */
  trace?: string[] | undefined;
  /** Package names or app-file globs to ship too (the scan option `include`). */
  include?: string[] | undefined;
  /** zstd level (default 3) and worker threads (default: all cores). */
  level?: number | undefined;
  threads?: number | undefined;
  /**
   * A registry to look the input digest up in before building (a hit is pulled and verified),
   * and to publish a new bundle to.
   */
  registry?: RegistryOptions | undefined;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/** What {@link build} produced. */
export interface BuildResult {
  /** sha256 of the bundle's index (format 3), which names its layers by their sha256. */
  digest: Digest;
  /**
   * The index file: in `outDir` as `<hex>.json` beside its layers (`<hex>.tar.zst`) when given,
   * else the cache's blob (its layers are blobs beside it).
   */
  path: string;
  /** True when the bundle came from the cache or a registry, without building. */
  cached: boolean;
  /** Where the bundle came from. */
  source: "cache" | "registry" | "built";
  /** With a registry, after building: whether the bundle was published. */
  pushed?: boolean;
  /** Why publishing failed (the build itself succeeded). */
  pushError?: Record<string, unknown>;
  inputDigest: Digest;
  /** What the cache and registry know the bundle by: the input digest plus the build options that change bytes. */
  key: Digest;
  /** Bytes of the index and all its layers (what a machine holding none of them fetches). */
  size: number;
  kind: Manifest["kind"];
  /** The layers in assembly order, each with whether the cache already had it. */
  layers: BuiltLayer[];
}

/**
 * Builds (or finds in the cache) the bundle for an app. An unchanged rebuild is answered from a
 * stat fingerprint of everything the last scan read, without scanning or reading package files.
 * @throws UsageError, InputError (see scan; ENVPACK_INPUT_OUTPUT_UNWRITABLE and
 *   ENVPACK_INPUT_NO_SPACE for `outDir` and `cacheDir`), IntegrityError, ToolError
 */
export async function build(options: BuildOptions): Promise<BuildResult> {
  // A `cache gc` waits until the build returns; a build waits for a gc running (cache-hold.ts).
  return withCacheHold(options.cacheDir, options.signal, () =>
    buildHeld(options),
  );
}

async function buildHeld(options: BuildOptions): Promise<BuildResult> {
  // Settled before the build returns or fails: nothing writes into the cache after it.
  const writes = openBuildWrites(options.onEvent);
  let built: BuildResult;
  try {
    built = await buildOrHit(options, writes);
  } catch (error) {
    // The build's own failure is the one reported; a failed record adds nothing to it.
    await writes.settle();
    throw destinationFailure(error, options);
  }
  const failed = await writes.settle();
  if (failed !== undefined) throw destinationFailure(failed.error, options);
  return built;
}

/**
 * A failed write to `--out` or the cache directory as the coded error naming it (unwritable,
 * full); any other error unchanged.
 */
function destinationFailure(error: unknown, options: BuildOptions): unknown {
  const errno = error as NodeJS.ErrnoException & { dest?: string };
  if (typeof errno?.code !== "string") return error;
  const cwd = options.cwd ?? process.cwd();
  const under = (dir: string) => {
    const base = resolve(cwd, dir);
    return [errno.path, errno.dest].some(
      (p) =>
        typeof p === "string" &&
        (resolve(cwd, p) === base || resolve(cwd, p).startsWith(base + sep)),
    );
  };
  if (options.outDir !== undefined && under(options.outDir))
    return writeFailure(error, resolve(cwd, options.outDir), "--out directory");
  // A write without a path (a stream's ENOSPC) can only be into the cache: --out is written by copy.
  if (under(options.cacheDir) || errno.path === undefined)
    return writeFailure(
      error,
      resolve(cwd, options.cacheDir),
      "cache directory",
    );
  return error;
}

async function buildOrHit(
  options: BuildOptions,
  writes: BuildWrites,
): Promise<BuildResult> {
  const cwd = options.cwd ?? process.cwd();
  const store = new LocalStore(options.cacheDir);
  const finish = async (
    result: Omit<BuildResult, "path">,
  ): Promise<BuildResult> => ({
    ...result,
    path: await exportBundle(store, result, options.outDir, cwd),
  });
  const fingerprint = fingerprintKey(options, cwd);
  const remembered = await readFingerprint(options.cacheDir, fingerprint);
  if (remembered.hit !== null) {
    const { inputDigest, kind, environment } = remembered.hit;
    const hit = await cacheHit(store, inputDigest, { ...options, environment });
    if (hit) return finish({ ...hit, kind, source: "cache" });
  }

  // Past the fingerprint hit: the packer loads only now, the registry client only for a build
  // given a registry; the scanner (through build-scan.ts) and the layer builder when first used,
  // after a prepacked prefix's plan has handed its runtime layer over.
  const [
    { openBuildScan },
    { hostNodeBinary, scansHostNode },
    registryApi,
    {
      nodeLauncherEntries,
      nodeRuntimeEntries,
      openBundleWriter,
      startPackThread,
    },
    { CondaPrepack, prepacksConda, wholePrefixIdentity },
  ] = await Promise.all([
    import("./build-scan.js"),
    import("./plan-bundle.js"),
    options.registry === undefined ? undefined : import("./registry.js"),
    import("../../packer/index.js"),
    import("./conda-prepack.js"),
  ]);
  const remote =
    registryApi === undefined || options.registry === undefined
      ? undefined
      : { ...registryApi, registry: registryApi.open(options.registry) };
  const scan = openBuildScan(options, {
    cwd,
    remembered,
    writes,
    speculate: remote === undefined,
  });
  // The other layers share one packing worker, booted with the first of them: one boot and
  // one set of zstd threads for the build, not one per layer competing for the same cores.
  let packThread: PackThread | undefined;
  /**
   * A bundle writer into the build's temp directory, with the build's zstd settings. The app
   * layer is small: it packs on this thread rather than wait for a worker to boot, unless the
   * build's worker is up already (a cold build), whose loaded packer and zstd context it reuses.
   */
  const openWriter = (outDir: string, role: LayerRole): BundleWriter =>
    openBundleWriter({
      outDir,
      level: options.level,
      threads: options.threads,
      inThread: role === "app" && packThread === undefined,
      thread:
        role === "app"
          ? packThread
          : (packThread ??= startPackThread(options.signal)),
      onEvent: options.onEvent,
      signal: options.signal,
    });

  const transfer = { onEvent: options.onEvent, signal: options.signal };
  const manifestFile =
    options.manifest === undefined ? [] : [resolve(cwd, options.manifest)];
  /** A manifest's bundle key, covering the whole Conda prefix its packages layer ships (if so). */
  const keyOf = async (manifest: Manifest) => {
    const whole = await wholePrefixIdentity(
      manifest,
      options,
      scan.inputs.readCondaEnv,
    );
    const keyed = { ...options, environment: whole.environment };
    return {
      whole,
      keyed,
      key: bundleKey(manifest.inputDigest as Digest, keyed),
    };
  };
  // With a registry, a quick scan (not reading package files) usually gives the input digest
  // already: a hit then reads no package contents. Its digest equals the full scan's unless a
  // package imports what it does not declare; then it misses and the full scan decides.
  let quick: Manifest | undefined;
  if (
    remote !== undefined &&
    options.manifest === undefined &&
    options.trace === undefined
  ) {
    quick = await scan.quick();
    const quickDigest = quick.inputDigest as Digest;
    const { whole, keyed, key: quickKey } = await keyOf(quick);
    const cached = await cacheHit(store, quickDigest, keyed);
    const pulled =
      cached ??
      (await pullBundle(
        {
          key: quickKey,
          inputDigest: quickDigest,
          environment: keyed.environment,
        },
        () =>
          remote.pullForInput(
            store,
            remote.registry,
            { key: quickKey, inputDigest: quickDigest },
            transfer,
          ),
      ));
    if (pulled) {
      const scanned = quick;
      writes.remember("fingerprint", () =>
        writeFingerprint(options.cacheDir, fingerprint, scanned, {
          extra: whole.files,
          trees: scan.inputs.packageTrees,
          stored: remembered.stored,
          environment: whole.environment,
        }),
      );
      return finish({
        ...pulled,
        inputDigest: quickDigest,
        key: quickKey,
        cached: true,
        kind: quick.kind,
        source: cached ? "cache" : "registry",
      });
    }
  }
  const tmp = join(
    options.cacheDir,
    "tmp",
    `build-${process.pid}-${randomBytes(6).toString("hex")}`,
  );
  const builder = builderIdentity();
  // A Node app scanned for this machine's node whose runtime layer is not cached: that layer (the
  // node binary, the bulk of the bytes, and its launcher) is known before the scan, so it is
  // packed whole meanwhile, a prepacked layer that ends its frame before the packages start.
  let runtimeWriter: BundleWriter | undefined;
  const hostRuntimeKey = scansHostNode(options)
    ? hostNodeRuntimeKey(builder, options)
    : undefined;
  if (
    hostRuntimeKey !== undefined &&
    (await layerHit(store, hostRuntimeKey)) === null
  ) {
    runtimeWriter = openWriter(tmp, "runtime");
    runtimeWriter.add(nodeRuntimeEntries(process.execPath));
    runtimeWriter.add(nodeLauncherEntries());
  }
  // A Conda prefix whose layers are not cached is packed while the app is scanned.
  const prepack = prepacksConda(options)
    ? new CondaPrepack({
        store,
        prefix: resolve(cwd, options.env as string),
        builder,
        keyOptions: options,
        readEnv: scan.inputs.readCondaEnv,
        openWriter: (role) => openWriter(tmp, role),
        onEvent: options.onEvent,
        signal: options.signal,
      })
    : undefined;
  try {
    // The scan starts once the prefix's runtime layer is packing: its module loading and its
    // interpreter probe then share the cores with the packing, not with the plan's way to the
    // first packed byte.
    await prepack?.runtimeHandedOver();
    const manifest =
      quick !== undefined && quick.kind !== "node" ? quick : await scan.full();
    const inputDigest = manifest.inputDigest as Digest;
    const { whole, keyed, key } = await keyOf(manifest);
    writes.remember("fingerprint", () =>
      writeFingerprint(options.cacheDir, fingerprint, manifest, {
        extra: [...manifestFile, ...whole.files],
        trees: scan.inputs.packageTrees,
        stored: remembered.stored,
        environment: whole.environment,
      }),
    );
    const hit = await cacheHit(store, inputDigest, keyed);
    if (hit)
      return await finish({ ...hit, kind: manifest.kind, source: "cache" });
    if (remote !== undefined && inputDigest !== quick?.inputDigest) {
      const pulled = await pullBundle(
        { key, inputDigest, environment: keyed.environment },
        () =>
          remote.pullForInput(
            store,
            remote.registry,
            { key, inputDigest },
            transfer,
          ),
      );
      if (pulled)
        return await finish({
          ...pulled,
          kind: manifest.kind,
          source: "registry",
        });
    }

    const keys = layerKeys(manifest, builder, keyed);
    if (
      runtimeWriter !== undefined &&
      (keys.runtime !== hostRuntimeKey ||
        hostNodeBinary(manifest) === undefined)
    ) {
      await runtimeWriter.abort();
      runtimeWriter = undefined;
    }
    const { buildLayers } = await import("./build-layers.js");
    const built = await buildLayers({
      store,
      manifest,
      keys,
      bundleKey: key,
      plan: scan.inputs,
      openWriter: (role) => openWriter(tmp, role),
      prepacked:
        runtimeWriter === undefined
          ? await prepack?.writers()
          : new Map([["runtime", runtimeWriter]]),
      tmp,
    });
    runtimeWriter = undefined;
    const size =
      built.indexSize + built.layers.reduce((sum, l) => sum + l.size, 0);
    const published =
      remote === undefined
        ? {}
        : await remote.publish(
            remote.registry,
            built.path,
            {
              digest: built.digest,
              size: built.indexSize,
              inputDigest: key,
              meta: { ...builtMeta(manifest.kind), inputDigest },
            },
            transfer,
          );
    return await finish({
      digest: built.digest,
      inputDigest,
      key,
      size,
      cached: false,
      kind: manifest.kind,
      source: "built",
      layers: built.layers,
      ...published,
    });
  } finally {
    try {
      await Promise.all([runtimeWriter?.abort(), prepack?.dispose()]);
    } finally {
      // Every writer on it is finished or aborted by now; a failed abort must not leave the
      // worker keeping the process alive.
      await packThread?.close(true);
      await removeIfPresent(tmp, { recursive: true });
    }
  }

  /**
   * A bundle pulled from the registry for a key, once the cache holds its index and every layer
   * (read back as a cache hit); null when the registry has none usable.
   */
  async function pullBundle(
    build: {
      key: Digest;
      inputDigest: Digest;
      environment?: Digest | undefined;
    },
    pull: () => Promise<unknown>,
  ): Promise<Omit<BuildResult, "path" | "kind" | "source"> | null> {
    if ((await pull()) === null) return null;
    const hit = await cacheHit(store, build.inputDigest, {
      ...options,
      environment: build.environment,
    });
    return hit === null ? null : { ...hit, key: build.key };
  }
}
