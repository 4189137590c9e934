// Bundle storage: the content-addressed local store (cache and local registry).

export { LocalStore, type IndexRecord, type BlobInfo } from "./local-store.js";
export type { Registry, RegistryEntry, TransferOptions } from "./registry.js";
