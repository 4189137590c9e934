// The packer's public surface: deterministic bundles, safe unpacking, Node and Conda planners.

import type {
  ensureUnpacked as EnsureUnpacked,
  removeStaleUnpacks as RemoveStaleUnpacks,
} from "./ensure-unpacked.js";
import type { unpackBundle as UnpackBundle } from "./unpack-bundle.js";

export {
  writeBundle,
  openBundleWriter,
  type BundleWriter,
  type BundleWriterOptions,
  BUNDLE_MTIME,
  type BundleEntry,
  type WriteBundleOptions,
  type WrittenBundle,
} from "./write-bundle.js";
export { startPackThread, type PackThread } from "./pack-host.js";
export type { UnpackBundleOptions } from "./unpack-bundle.js";
export { COMPLETE_MARKER, type EnsureUnpackedOptions } from "./env-dir.js";
export {
  BUNDLE_FORMAT,
  appLauncherEntry,
  metaEntries,
  BUNDLE_META_PATH,
  MANIFEST_PATH,
  type BundleMeta,
} from "./bundle-meta.js";
export {
  planNodeBundle,
  nodeLauncherEntries,
  nodeRuntimeEntries,
  APP_DIR,
  type NodeBundlePlan,
} from "./node/plan-node-bundle.js";
export { planCondaBundle, packCondaWithCondaPack } from "./conda/index.js";
export {
  checkNodeTarget,
  fetchNodeRuntime,
} from "./node/fetch-node-runtime.js";
export {
  LAYERED_BUNDLE_FORMAT,
  LAYER_ROLES,
  encodeBundleIndex,
  parseBundleIndex,
  type BundleIndex,
  type LayerRef,
  type LayerRole,
} from "./layers/bundle-index.js";
export {
  splitLayers,
  writeBundleIndex,
  writeLayer,
  writeLayeredBundle,
} from "./layers/write-layered.js";
export { readLayeredIndex, layerBeside } from "./layers/read-layered.js";
export { BASES_DIR, baseName, removeBasesOf } from "./layers/relocated-base.js";
export { removeTree } from "./layers/read-only-tree.js";

// The unpacker (its writing thread, entry guard, layer assembly) loads on first use: a
// build, which never unpacks, then does not load it with the packer.

/** {@link UnpackBundle}, loaded on first use. */
export const unpackBundle: typeof UnpackBundle = async (...args) =>
  (await import("./unpack-bundle.js")).unpackBundle(...args);
/** {@link EnsureUnpacked}, loaded on first use. */
export const ensureUnpacked: typeof EnsureUnpacked = async (...args) =>
  (await import("./ensure-unpacked.js")).ensureUnpacked(...args);
/** {@link RemoveStaleUnpacks}, loaded on first use. */
export const removeStaleUnpacks: typeof RemoveStaleUnpacks = async (...args) =>
  (await import("./ensure-unpacked.js")).removeStaleUnpacks(...args);
