// Reads configuration from the environment and flags (the only place that looks at process.env).

import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Settings that come from the environment or flags. */
export interface Config {
  /** Conda prefix for Python scans: `--env`, else `$CONDA_PREFIX`. */
  env?: string | undefined;
  /** Cache of bundles and unpacked environments: `$ENVPACK_CACHE_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/envpack`. */
  cacheDir: string;
}

/** Merges flags over the environment (defaults < `ENVPACK_*`/`CONDA_PREFIX` env < flags). */
export function loadConfig(
  flags: Partial<Config>,
  environment: NodeJS.ProcessEnv = process.env,
): Readonly<Config> {
  const xdg = environment.XDG_CACHE_HOME || join(homedir(), ".cache");
  return Object.freeze({
    env: flags.env ?? (environment.CONDA_PREFIX || undefined),
    cacheDir: resolve(
      flags.cacheDir ?? (environment.ENVPACK_CACHE_DIR || join(xdg, "envpack")),
    ),
  });
}
