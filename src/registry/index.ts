// Bundle storage: the content-addressed local store (cache and local registry) and registries.

export { LocalStore, type IndexRecord, type BlobInfo } from "./local-store.js";
export type {
  PushEntry,
  PushReport,
  Registry,
  RegistryEntry,
  RegistryLayer,
  TransferOptions,
} from "./registry.js";
export { LocalRegistry } from "./local-registry.js";
export { openRegistry, type OpenRegistryOptions } from "./open-registry.js";
export { credentialsFrom, type RegistryCredentials } from "./credentials.js";
export { inputTag } from "./oci-registry.js";
