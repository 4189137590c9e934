// The core layer's public surface: errors, events, digests and the manifest schema.

export * from "./errors.js";
export * from "./events.js";
export * from "./digest.js";
export * from "./manifest.js";
export * from "./canonical-json.js";
export * from "./conda-meta.js";
export * from "./safe-path.js";
export * from "./fs-errors.js";
export * from "./process-runs.js";
export * from "./one-shot.js";
export * from "./resources.js";
export * from "./resource-spec.js";
export * from "./task.js";
export * from "./redact.js";
export * from "./atomic-write.js";
export * from "./settle-all.js";
export * from "./own-files.js";
export * from "./native-stat.js";
export * from "./path-stamps.js";
export * from "./bundle-env.js";
export * from "./zod.js";
