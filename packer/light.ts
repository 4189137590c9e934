// The packer's light barrel for start-up paths (a cache hit): the bundle format, no tar or zstd.

export { BUNDLE_FORMAT } from "./bundle-meta.js";
