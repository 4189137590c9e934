// The composition root: the use cases the CLI and library users call.

export {
  scan,
  strictFindings,
  writeFileAtomic,
  type ScanOptions,
} from "./scan-app.js";
export { envpackVersion } from "./version.js";
export { loadConfig, type Config } from "./load-config.js";
