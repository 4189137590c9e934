// The packer's public surface: deterministic bundles, safe unpacking, Node and Conda planners.

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
export { unpackBundle, type UnpackBundleOptions } from "./unpack-bundle.js";
export {
  ensureUnpacked,
  removeStaleUnpacks,
  COMPLETE_MARKER,
  type EnsureUnpackedOptions,
} from "./ensure-unpacked.js";
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
