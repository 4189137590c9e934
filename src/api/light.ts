// The api layer's light barrel for start-up paths: what the CLI needs before a command runs.

export { envpackVersion } from "./version.js";
export {
  loadConfig,
  loadRegistryConfig,
  type Config,
  type ConfigFlags,
  type RegistryFlags,
} from "./load-config.js";
export { build, type BuildOptions, type BuildResult } from "./build.js";
// Both load their scanner, packer and registry client when called.
export { scan, type ScanOptions } from "./scan-app.js";
// The report command needs only Node's builtins (Chart.js is read as a file, not imported).
export {
  report,
  type ReportOptions,
  type ReportResult,
  type RunFigures,
} from "./report.js";
// A ready tree runs without loading the unpacker (tar, zstd), which loads when a layer is missing.
export { run, type RunOptions, type RunResult } from "./run.js";
