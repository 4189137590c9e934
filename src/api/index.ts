// The composition root: the use cases the CLI and library users call.

export {
  scan,
  strictFindings,
  writeOutputFile,
  type ScanOptions,
} from "./scan-app.js";
export { build, type BuildOptions, type BuildResult } from "./build.js";
export { run, type RunOptions, type RunResult } from "./run.js";
export { cacheList, cacheRemove, cacheGc, parseSize } from "./cache.js";
export { envpackVersion } from "./version.js";
export {
  loadConfig,
  loadRegistryConfig,
  type Config,
  type ConfigFlags,
  type RegistryFlags,
} from "./load-config.js";
export {
  push,
  pull,
  type PushOptions,
  type PushResult,
  type PullOptions,
  type PullResult,
  type RegistryOptions,
  type RegistryCredentials,
} from "./registry.js";
export {
  Executor,
  type ExecutorOptions,
  type LocalExecutorOptions,
  type WorkQueueExecutorOptions,
  type AppOptions,
  type App,
  type CommandResult,
  type WorkerSpec,
  type CategorySummary,
  type AutolabelMode,
} from "./executor.js";
export {
  report,
  type ReportOptions,
  type ReportResult,
  type RunFigures,
} from "./report.js";
