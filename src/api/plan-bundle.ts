// Planning a build's bundle: the entries of a Node or Conda bundle from its manifest, and the
// node binary a build for this machine can start packing before the scan is done.

import { join, posix } from "node:path";
import {
  InputError,
  isNotFound,
  type Manifest,
  type OnEvent,
} from "../core/light.js";
import {
  APP_DIR,
  appLauncherEntry,
  fetchNodeRuntime,
  metaEntries,
  packCondaWithCondaPack,
  planCondaBundle,
  planNodeBundle,
  type BundleEntry,
  type LayerRole,
} from "../../packer/index.js";
import type { CondaEnvReader } from "../conda/index.js";
import {
  treeEntries,
  type PackageTrees,
  type TreeEntry,
} from "../scan/light.js";

/** Options of {@link planBundle}: the build options planning reads. */
export interface PlanBundleOptions {
  cacheDir: string;
  prune?: boolean | undefined;
  engine?: "builtin" | "conda-pack" | undefined;
  /** Reads the Conda prefix; a build passes the reader its scan used. */
  readCondaEnv?: CondaEnvReader | undefined;
  /** The layers to plan (default: all); the others' work is skipped (a build has them cached). */
  roles?: ReadonlySet<LayerRole> | undefined;
  /**
   * The package tree walks the build's scan took: a Node bundle lists its packages from them
   * rather than reading each package directory again.
   */
  packageTrees?: PackageTrees | undefined;
  /** Called once the entries are planned, before they are returned. */
  onPlanned?: (() => void) | undefined;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * A bundle's planned entries (`leading` packed first: the runtime's bulk), each tagged with its
 * layer, and what to clean up once written.
 */
export interface PlannedBundle {
  leading: BundleEntry[];
  entries: BundleEntry[];
  dispose: () => Promise<void>;
}

/**
 * Whether a build scans entries for this machine's node (no manifest file, no Conda prefix, no
 * other Node version or platform): its bundle then leads with `process.execPath`.
 */
export function scansHostNode(options: {
  manifest?: string | undefined;
  env?: string | undefined;
  node?: string | undefined;
  platform?: string | undefined;
}): boolean {
  return (
    options.manifest === undefined &&
    options.env === undefined &&
    options.node === undefined &&
    options.platform === undefined
  );
}

/** The node binary a Node bundle of this manifest carries when it is this machine's own. */
export function hostNodeBinary(manifest: Manifest): string | undefined {
  const { runtime } = manifest;
  return manifest.kind === "node" &&
    runtime.name === "node" &&
    runtime.version === process.versions.node &&
    runtime.platform === `${process.platform}-${process.arch}`
    ? process.execPath
    : undefined;
}

/**
 * Plans the bundle of a manifest: a Node bundle (the app compiled by esbuild while the node
 * runtime is fetched and the packages listed) or a Conda bundle (the environment, the app's
 * files under `app/`, the launcher and metadata).
 * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID for a Conda manifest without its prefix; the
 *   planners' and compiler's errors
 */
export async function planBundle(
  manifest: Manifest,
  options: PlanBundleOptions,
): Promise<PlannedBundle> {
  const planned = await (manifest.kind === "node"
    ? planNode(manifest, options)
    : planConda(manifest, options));
  options.onPlanned?.();
  return planned;
}

async function planConda(
  manifest: Manifest,
  options: PlanBundleOptions,
): Promise<PlannedBundle> {
  if (manifest.env === undefined) {
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      "a conda manifest without its env prefix",
      {
        hint: "Regenerate it with `envpack scan app.py --env PREFIX -o FILE`.",
      },
    );
  }
  const wants = (role: LayerRole) => options.roles?.has(role) ?? true;
  const keep = options.prune
    ? new Set(manifest.packages.map((p) => p.id))
    : undefined;
  const common = {
    prefix: manifest.env.prefix,
    keep,
    onWarn: options.onEvent,
    signal: options.signal,
  };
  // The environment is planned whole (relocation spans it) or not at all.
  const plan = !(wants("runtime") || wants("packages"))
    ? { entries: [], dispose: async () => {} }
    : options.engine === "conda-pack"
      ? await packCondaWithCondaPack(common)
      : {
          ...(await planCondaBundle({
            ...common,
            ...(options.readCondaEnv === undefined
              ? {}
              : { readEnv: options.readCondaEnv }),
          })),
          dispose: async () => {},
        };
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
      // conda-pack's repacked prefix carries no runtime split: all of it is the packages layer.
      ...plan.entries.map((e) => ({ ...e, layer: e.layer ?? "packages" })),
      ...(wants("app")
        ? [
            ...appFiles,
            appLauncherEntry("python3", entryPaths[0] ?? ""),
            ...metaEntries(manifest, entryPaths),
          ]
        : []),
    ],
    dispose: plan.dispose,
  };
}

async function planNode(
  manifest: Manifest,
  options: PlanBundleOptions,
): Promise<PlannedBundle> {
  const { runtime } = manifest;
  const wants = (role: LayerRole) => options.roles?.has(role) ?? true;
  // esbuild compiles the app (in its own process) while the runtime is fetched and the packages
  // are listed; awaited together, so a failure of either is seen.
  // esbuild loads only for a Node bundle's app layer.
  const compiling = wants("app")
    ? (await import("./compile-app.js")).compileApp(manifest, {
        cacheDir: options.cacheDir,
      })
    : undefined;
  const binary = !wants("runtime")
    ? undefined
    : (hostNodeBinary(manifest) ??
      fetchNodeRuntime({
        version: runtime.version,
        platform: runtime.platform,
        runtimesDir: join(options.cacheDir, "runtimes"),
        signal: options.signal,
      }));
  const [plan] = await Promise.all([
    Promise.resolve(binary).then((nodeBinary) =>
      planNodeBundle({
        manifest,
        nodeBinary,
        compiled: compiling,
        onWarn: options.onEvent,
        roles: options.roles,
        ...(options.packageTrees === undefined
          ? {}
          : { listPackage: listingOf(options.packageTrees) }),
      }),
    ),
    compiling,
  ]);
  return { ...plan, dispose: async () => {} };
}

/**
 * A package directory's entries from its walk. The walk leaves out every entry named
 * `node_modules` (the fingerprint covers no such entry either); a missing directory is listed
 * by the planner, which reports it.
 */
function listingOf(
  trees: PackageTrees,
): (dir: string) => TreeEntry[] | undefined {
  return (dir) => {
    try {
      return treeEntries(trees(dir));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  };
}
