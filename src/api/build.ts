// The build use case: manifest (scanned, or read from a file) → cache hit, or a new bundle in the cache.

import { copyFile, mkdir, readFile, rm, stat } from "node:fs/promises";
import { join, posix, resolve, sep } from "node:path";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import {
  InputError,
  UsageError,
  canonicalJson,
  digestOf,
  hashFile,
  isNotFound,
  parseManifest,
  writeAtomic,
  writeFailure,
  writeFileAtomic,
  type Digest,
  type Manifest,
  type OnEvent,
} from "../core/index.js";
import {
  APP_DIR,
  BUNDLE_FORMAT,
  appLauncherEntry,
  checkNodeTarget,
  fetchNodeRuntime,
  metaEntries,
  packCondaWithCondaPack,
  planCondaBundle,
  nodeRuntimeEntries,
  planNodeBundle,
  writeBundle,
  type BundleEntry,
  type WrittenBundle,
} from "../../packer/index.js";
import { LocalStore } from "../registry/index.js";
import { packageTreeStamp } from "../scan/index.js";
import { envpackVersion } from "./version.js";
import { bundleKey } from "./bundle-key.js";
import { dropDamagedBlob } from "./cache.js";
import { compileApp } from "./compile-app.js";
import {
  open as openRegistryOf,
  publish,
  pullForInput,
  type RegistryOptions,
} from "./registry.js";
import { retarget } from "./retarget.js";
import { markEditedPackages } from "./package-edits.js";
import { scan, syntaxError } from "./scan-app.js";

const require = createRequire(import.meta.url);

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
  /** sha256 of the bundle's bytes. */
  digest: Digest;
  /** The bundle file (in `outDir` when given, else in the cache). */
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
  size: number;
  kind: Manifest["kind"];
}

/**
 * Builds (or finds in the cache) the bundle for an app. An unchanged rebuild is answered from a
 * stat fingerprint of everything the last scan read, without scanning or reading package files.
 * @throws UsageError, InputError (see scan; ENVPACK_INPUT_OUTPUT_UNWRITABLE and
 *   ENVPACK_INPUT_NO_SPACE for `outDir` and `cacheDir`), IntegrityError, ToolError
 */
export async function build(options: BuildOptions): Promise<BuildResult> {
  try {
    return await buildOrHit(options);
  } catch (error) {
    throw destinationFailure(error, options);
  }
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

async function buildOrHit(options: BuildOptions): Promise<BuildResult> {
  const cwd = options.cwd ?? process.cwd();
  const store = new LocalStore(options.cacheDir);
  const fingerprintKey = digestOf(
    canonicalJson({
      entries: (options.entries ?? []).map((e) => resolve(cwd, e)).sort(),
      manifest:
        options.manifest === undefined ? null : resolve(cwd, options.manifest),
      env: options.env === undefined ? null : resolve(cwd, options.env),
      prune: options.prune === true,
      node: options.node ?? null,
      platform: options.platform ?? null,
      engine: options.engine ?? "builtin",
    }),
  );
  const remembered = await readFingerprint(options.cacheDir, fingerprintKey);
  if (remembered !== null) {
    const hit = await cacheHit(store, remembered.inputDigest, options);
    if (hit)
      return finish(options, store, {
        ...hit,
        kind: remembered.kind,
        source: "cache",
      });
  }

  const registry =
    options.registry === undefined
      ? undefined
      : openRegistryOf(options.registry);
  const transfer = { onEvent: options.onEvent, signal: options.signal };
  const manifestFile =
    options.manifest === undefined ? [] : [resolve(cwd, options.manifest)];
  // With a registry, a quick scan (not reading package files) usually gives the input digest
  // already: a hit then reads no package contents. Its digest equals the full scan's unless a
  // package imports what it does not declare; then it misses and the full scan decides.
  let quick: Manifest | undefined;
  if (registry !== undefined && options.manifest === undefined) {
    quick = await loadManifest(options, cwd, false);
    const quickDigest = quick.inputDigest as Digest;
    const quickKey = bundleKey(quickDigest, options);
    const cached = await cacheHit(store, quickDigest, options);
    const pulled =
      cached ??
      (await pullForInput(
        store,
        registry,
        { key: quickKey, inputDigest: quickDigest },
        transfer,
      ));
    if (pulled) {
      await writeFingerprint(options.cacheDir, fingerprintKey, quick, []);
      return finish(options, store, {
        ...pulled,
        inputDigest: quickDigest,
        key: quickKey,
        cached: true,
        kind: quick.kind,
        source: cached ? "cache" : "registry",
      });
    }
  }
  // A Node app scanned for this machine's node: its bundle leads with the node binary, the bulk
  // of its bytes and known before the scan, so the packing worker compresses it meanwhile.
  const tmp = join(
    options.cacheDir,
    "tmp",
    `build-${process.pid}-${randomBytes(6).toString("hex")}`,
  );
  await mkdir(tmp, { recursive: true });
  let early = scansHostNode(options)
    ? startWriting(options, tmp, nodeRuntimeEntries(process.execPath))
    : undefined;
  let planned: Promise<PlannedEntries> | undefined;
  try {
    const manifest =
      quick !== undefined && quick.kind !== "node"
        ? quick
        : await loadManifest(options, cwd, true);
    const inputDigest = manifest.inputDigest as Digest;
    const key = bundleKey(inputDigest, options);
    await writeFingerprint(
      options.cacheDir,
      fingerprintKey,
      manifest,
      manifestFile,
    );
    const hit = await cacheHit(store, inputDigest, options);
    if (hit)
      return await finish(options, store, {
        ...hit,
        kind: manifest.kind,
        source: "cache",
      });
    if (registry !== undefined && inputDigest !== quick?.inputDigest) {
      const pulled = await pullForInput(
        store,
        registry,
        { key, inputDigest },
        transfer,
      );
      if (pulled)
        return await finish(options, store, {
          ...pulled,
          inputDigest,
          key,
          cached: true,
          kind: manifest.kind,
          source: "registry",
        });
    }

    if (early !== undefined && hostNodeBinary(manifest) === undefined) {
      await early.cancel();
      early = undefined;
    }
    // Otherwise the packing worker boots while the entries are planned.
    const plan = planEntries(manifest, options);
    planned = plan;
    const leading = plan.then((p) => p.leading);
    const entries = plan.then((p) => p.entries);
    // A planning failure surfaces through writeBundle, at whichever it awaits first; the other
    // is handled here.
    leading.catch(() => {});
    entries.catch(() => {});
    const written = await (early ?? startWriting(options, tmp, leading)).finish(
      entries,
    );
    // The writer hashed the very bytes it wrote: the store moves them in without reading them again.
    const put = await store.putFile(written.path, written.digest, {
      hashedByWriter: true,
    });
    const meta = {
      builder: builderIdentity(),
      format: String(BUNDLE_FORMAT),
      kind: manifest.kind,
    };
    await store.record({
      key,
      inputDigest,
      digest: put.digest,
      size: put.size,
      usedAt: Date.now(),
      meta,
    });
    const published =
      registry === undefined
        ? {}
        : await publish(
            registry,
            put.path,
            {
              digest: put.digest,
              size: put.size,
              inputDigest: key,
              meta: { ...meta, inputDigest },
            },
            transfer,
          );
    return await finish(options, store, {
      digest: put.digest,
      inputDigest,
      key,
      size: put.size,
      cached: false,
      kind: manifest.kind,
      source: "built",
      ...published,
    });
  } finally {
    await early?.cancel();
    await planned?.then(
      (plan) => plan.dispose(),
      () => {},
    );
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Whether a build scans entries for this machine's node (no manifest file, no Conda prefix, no
 * other Node version or platform): its bundle then leads with `process.execPath`.
 */
function scansHostNode(options: BuildOptions): boolean {
  return (
    options.manifest === undefined &&
    options.env === undefined &&
    options.node === undefined &&
    options.platform === undefined
  );
}

/** The node binary a Node bundle of this manifest carries when it is this machine's own. */
function hostNodeBinary(manifest: Manifest): string | undefined {
  const { runtime } = manifest;
  return manifest.kind === "node" &&
    runtime.name === "node" &&
    runtime.version === process.versions.node &&
    runtime.platform === `${process.platform}-${process.arch}`
    ? process.execPath
    : undefined;
}

/**
 * A bundle being written from its leading entries (the worker boots meanwhile when they are still
 * a promise) before the rest is known: `finish` hands over
 * the rest and resolves with the bundle; `cancel` (harmless once finished) stops it and waits
 * until nothing of it is left.
 */
function startWriting(
  options: BuildOptions,
  outDir: string,
  leading: BundleEntry[] | Promise<BundleEntry[]>,
): {
  finish(entries: Promise<BundleEntry[]>): Promise<WrittenBundle>;
  cancel(): Promise<void>;
} {
  let settle!: {
    resolve: (entries: Promise<BundleEntry[]>) => void;
    reject: (reason: unknown) => void;
  };
  const rest = new Promise<BundleEntry[]>(
    (resolve, reject) => (settle = { resolve, reject }),
  );
  // Awaited by the writer after the leading entries; when those fail, nobody else awaits it.
  rest.catch(() => {});
  const written = writeBundle({
    leading,
    entries: rest,
    outDir,
    level: options.level,
    threads: options.threads,
    onEvent: options.onEvent,
    signal: options.signal,
  });
  written.catch(() => {});
  return {
    finish(entries) {
      settle.resolve(entries);
      return written;
    },
    async cancel() {
      settle.reject(new Error("the bundle is not needed"));
      await written.catch(() => {});
    },
  };
}

/**
 * What else decides a bundle's bytes besides its inputs: envpack's version and the zstd library
 * (STYLE §8). A cached bundle from another builder is rebuilt, not reused.
 */
function builderIdentity(): string {
  const zstd = (require("zstd-napi/package.json") as { version: string })
    .version;
  return `envpack@${envpackVersion()} bundle-format@${BUNDLE_FORMAT} zstd-napi@${zstd}`;
}

/**
 * The cached bundle for an input digest built with these options, marked used, when it is still
 * there and this builder made it, or it was pulled from a registry in this bundle format.
 */
async function cacheHit(
  store: LocalStore,
  inputDigest: Digest,
  options: BuildOptions,
): Promise<Omit<BuildResult, "path" | "kind" | "source"> | null> {
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

/** The manifest to build: read from `--manifest` or scanned, then retargeted for --node/--platform. */
async function loadManifest(
  options: BuildOptions,
  cwd: string,
  parsePackages: boolean,
): Promise<Manifest> {
  const scanned = await readOrScan(options, cwd, parsePackages);
  const broken = syntaxError(scanned);
  if (broken !== undefined) throw broken;
  const manifest = await markEditedPackages(scanned, options.cacheDir);
  if (options.node === undefined && options.platform === undefined)
    return manifest;
  if (manifest.runtime.name !== "node") {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      "--node and --platform apply to Node apps only",
      {
        hint: "A Conda bundle carries the environment's own interpreter.",
      },
    );
  }
  const platform = options.platform ?? manifest.runtime.platform;
  const version = checkNodeTarget(
    options.node ?? manifest.runtime.version,
    platform,
  );
  return retarget(manifest, { version, platform });
}

async function readOrScan(
  options: BuildOptions,
  cwd: string,
  parsePackages: boolean,
): Promise<Manifest> {
  if (options.manifest !== undefined) {
    const path = resolve(cwd, options.manifest);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw new InputError(
        "ENVPACK_INPUT_MANIFEST_INVALID",
        `manifest not found: ${path}`,
        {
          hint: "Write one with `envpack scan ENTRY -o FILE`.",
          cause: error,
        },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new InputError(
        "ENVPACK_INPUT_MANIFEST_INVALID",
        `${path} is not JSON: ${(error as Error).message}`,
        {
          hint: "Write it with `envpack scan ENTRY -o FILE`.",
          cause: error,
        },
      );
    }
    return parseManifest(json, path);
  }
  return scan({
    entries: options.entries ?? [],
    env: options.env,
    cwd,
    parsePackages,
    onEvent: options.onEvent,
    signal: options.signal,
  });
}

/** A bundle's planned entries (`leading` packed first), and what to clean up once written. */
interface PlannedEntries {
  leading: BundleEntry[];
  entries: BundleEntry[];
  dispose: () => Promise<void>;
}

/** Plans the bundle of a manifest. */
async function planEntries(
  manifest: Manifest,
  options: BuildOptions,
): Promise<PlannedEntries> {
  const onWarn = options.onEvent;
  if (manifest.kind === "node") {
    // esbuild compiles the app (in its own process) while the packages are listed.
    const compiled = compileApp(manifest);
    compiled.catch(() => {});
    const { runtime } = manifest;
    const nodeBinary =
      hostNodeBinary(manifest) ??
      (await fetchNodeRuntime({
        version: runtime.version,
        platform: runtime.platform,
        runtimesDir: join(options.cacheDir, "runtimes"),
        signal: options.signal,
      }));
    const plan = await planNodeBundle({
      manifest,
      nodeBinary,
      compiled,
      onWarn,
    });
    return { ...plan, dispose: async () => {} };
  }
  if (manifest.env === undefined) {
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      "a conda manifest without its env prefix",
      {
        hint: "Regenerate it with `envpack scan app.py --env PREFIX -o FILE`.",
      },
    );
  }
  const keep = options.prune
    ? new Set(manifest.packages.map((p) => p.id))
    : undefined;
  const common = {
    prefix: manifest.env.prefix,
    keep,
    onWarn,
    signal: options.signal,
  };
  const plan =
    options.engine === "conda-pack"
      ? await packCondaWithCondaPack(common)
      : { ...(await planCondaBundle(common)), dispose: async () => {} };
  // The app's own Python files travel beside the environment, under app/ as in Node bundles.
  const appFiles: BundleEntry[] = manifest.files.map((file) => ({
    path: posix.join(APP_DIR, file.path),
    type: "file",
    source: join(manifest.root, ...file.path.split("/")),
  }));
  const entryPaths = manifest.entries.map((e) => posix.join(APP_DIR, e));
  return {
    leading: [],
    entries: [
      ...plan.entries,
      ...appFiles,
      appLauncherEntry("python3", entryPaths[0] ?? ""),
      ...metaEntries(manifest, entryPaths),
    ],
    dispose: plan.dispose,
  };
}

async function finish(
  options: BuildOptions,
  store: LocalStore,
  result: Omit<BuildResult, "path">,
): Promise<BuildResult> {
  const blob = store.blobPath(result.digest);
  if (options.outDir === undefined) return { ...result, path: blob };
  const outDir = resolve(options.cwd ?? process.cwd(), options.outDir);
  const path = join(outDir, `${result.digest.slice("sha256:".length)}.tar.zst`);
  await writeAtomic(path, (temp) => copyFile(blob, temp));
  return { ...result, path };
}

/** Stats of every file and directory a scan's result depends on, to answer rebuilds without scanning. */
interface Fingerprint {
  inputDigest: Digest;
  kind: Manifest["kind"];
  stats: Array<[path: string, stamp: string]>;
  /** {@link packageTreeStamp} of every npm package directory: a file edited inside one is seen. */
  trees: Array<[dir: string, stamp: string]>;
}

function fingerprintPath(cacheDir: string, key: Digest): string {
  return join(cacheDir, "fingerprints", `${key.slice("sha256:".length)}.json`);
}

/** npm package directories of a Node manifest: a file edited inside one changes no watched path's stats. */
function packageDirs(manifest: Manifest): string[] {
  return manifest.kind === "node"
    ? manifest.packages.map((p) => join(manifest.root, ...p.path.split("/")))
    : [];
}

async function treeStampOf(dir: string): Promise<string> {
  try {
    return await packageTreeStamp(dir);
  } catch (error) {
    if (isNotFound(error)) return "missing";
    throw error;
  }
}

async function stampOf(path: string): Promise<string> {
  try {
    const info = await stat(path, { bigint: true });
    return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch (error) {
    if (isNotFound(error)) return "missing";
    throw error;
  }
}

/** The paths whose stats vouch for a manifest: app files, package metadata and lockfiles, the directories holding them. */
function watchedPaths(manifest: Manifest): string[] {
  const at = (base: string, rel: string) => join(base, ...rel.split("/"));
  const paths = new Set<string>();
  for (const file of manifest.files) paths.add(at(manifest.root, file.path));
  if (manifest.kind === "node") {
    for (const lock of [
      "package-lock.json",
      "npm-shrinkwrap.json",
      "node_modules/.package-lock.json",
      "node_modules",
    ]) {
      paths.add(at(manifest.root, lock));
    }
    for (const pkg of manifest.packages) {
      paths.add(at(manifest.root, pkg.path));
      paths.add(at(manifest.root, `${pkg.path}/package.json`));
    }
  } else if (manifest.env !== undefined) {
    paths.add(join(manifest.env.prefix, "conda-meta"));
    for (const pkg of manifest.packages)
      paths.add(at(manifest.env.prefix, pkg.path));
  }
  return [...paths].sort();
}

async function writeFingerprint(
  cacheDir: string,
  key: Digest,
  manifest: Manifest,
  extra: string[],
): Promise<void> {
  const paths = [...watchedPaths(manifest), ...extra];
  const fingerprint: Fingerprint = {
    inputDigest: manifest.inputDigest as Digest,
    kind: manifest.kind,
    stats: await Promise.all(
      paths.map(async (p): Promise<[string, string]> => [p, await stampOf(p)]),
    ),
    trees: await Promise.all(
      packageDirs(manifest).map(async (d): Promise<[string, string]> => [
        d,
        await treeStampOf(d),
      ]),
    ),
  };
  const path = fingerprintPath(cacheDir, key);
  // Cheap to lose: a fingerprint that does not parse only means a full scan.
  await writeFileAtomic(path, JSON.stringify(fingerprint), { fsync: false });
}

/** The remembered input digest when every watched path still has the same stats; else null. */
async function readFingerprint(
  cacheDir: string,
  key: Digest,
): Promise<Fingerprint | null> {
  let fingerprint: Fingerprint;
  try {
    fingerprint = JSON.parse(
      await readFile(fingerprintPath(cacheDir, key), "utf8"),
    ) as Fingerprint;
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return null;
    throw error;
  }
  // A fingerprint without package tree stamps predates them: it cannot vouch for edited packages.
  if (!Array.isArray(fingerprint.trees)) return null;
  for (const [path, stamp] of fingerprint.stats)
    if ((await stampOf(path)) !== stamp) return null;
  const trees = await Promise.all(
    fingerprint.trees.map(
      async ([dir, stamp]) => (await treeStampOf(dir)) === stamp,
    ),
  );
  return trees.every(Boolean) ? fingerprint : null;
}
