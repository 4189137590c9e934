// Bundle storage: the content-addressed local store (cache and local registry).

export {
  LocalStore,
  hashFile,
  type IndexRecord,
  type BlobInfo,
} from "./local-store.js";
