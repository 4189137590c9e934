// Reads configuration from the environment and flags (the only place that looks at process.env).

/** Settings that come from the environment or flags. */
export interface Config {
  /** Conda prefix for Python scans: `--env`, else `$CONDA_PREFIX`. */
  env?: string | undefined;
}

/** Merges flags over the environment (defaults < `ENVPACK_*`/`CONDA_PREFIX` env < flags). */
export function loadConfig(
  flags: Partial<Config>,
  environment: NodeJS.ProcessEnv = process.env,
): Readonly<Config> {
  return Object.freeze({
    env: flags.env ?? (environment.CONDA_PREFIX || undefined),
  });
}
