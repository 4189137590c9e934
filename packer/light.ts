// The packer's light barrel for start-up paths (a cache hit): the bundle format and the layered
// bundle's index, no tar or zstd.

export { BUNDLE_FORMAT } from "./bundle-meta.js";
export {
  LAYER_ROLES,
  looksLikeBundleIndex,
  parseBundleIndex,
  type BundleIndex,
  type LayerRef,
  type LayerRole,
} from "./layers/bundle-index.js";
export {
  LAYERS_DIR,
  readLayeredIndex,
  layerBeside,
} from "./layers/read-layered.js";
export { COMPLETE_MARKER, unpackedDir } from "./env-dir.js";
export { openUnpacked } from "./unpacked-env.js";
export {
  isProcessAlive,
  processStartTime,
  readLockHolder,
  withDirLock,
} from "./dir-lock.js";
export { packerCodeDigest } from "./code-digest.js";
