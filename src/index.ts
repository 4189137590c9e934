// envpack's public library entry: everything exported here is the supported API.

export { scan, type ScanOptions } from "./scan/index.js";
export * from "./core/index.js";
