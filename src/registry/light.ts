// The registry layer's light barrel for start-up paths: the local store and credentials, no HTTP client.

export {
  LocalStore,
  isMissingBlob,
  type IndexRecord,
  type BlobInfo,
} from "./local-store.js";
export { credentialsFrom, type RegistryCredentials } from "./credentials.js";
