// Reads configuration from the environment and flags (the only place that looks at process.env or
// reads configuration files).

import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { UsageError, isNotFound } from "../core/light.js";
import { credentialsFrom } from "../registry/light.js";
import type { RegistryCredentials, RegistryOptions } from "./registry.js";

/** Settings that come from the environment or flags. */
export interface Config {
  /** Conda prefix for Python scans: `--env`, else `$CONDA_PREFIX`. */
  env?: string | undefined;
  /** Cache of bundles and unpacked environments: `$ENVPACK_CACHE_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/envpack`. */
  cacheDir: string;
}

/** The flags {@link loadConfig} merges over the environment. */
export interface ConfigFlags {
  env?: string | undefined;
  cacheDir?: string | undefined;
}

/** Merges flags over the environment (defaults < `ENVPACK_*`/`CONDA_PREFIX` env < flags). */
export function loadConfig(
  flags: ConfigFlags,
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

/** What an executor takes from the environment. */
export interface RunEnvironment {
  /** `$ENVPACK_RUN_LOG`: the run log of executors not given `log`. */
  runLog: string | undefined;
  /** `$CI` is set: progress as plain lines, never a redrawn one. */
  ci: boolean;
}

/** The executor's settings from the environment. */
export function loadRunEnvironment(
  environment: NodeJS.ProcessEnv = process.env,
): Readonly<RunEnvironment> {
  return Object.freeze({
    runLog: environment.ENVPACK_RUN_LOG || undefined,
    ci: Boolean(environment.CI),
  });
}

/** The flags {@link loadRegistryConfig} merges over the environment. */
export interface RegistryFlags {
  registry?: string | undefined;
  insecure?: boolean | undefined;
}

/**
 * The registry, for the commands that use one (apart from {@link loadConfig}, so nothing else
 * reads the Docker config): `--registry`, else `$ENVPACK_REGISTRY`, else none; `--insecure` (or
 * `ENVPACK_REGISTRY_INSECURE=1`) allows plain HTTP; `ENVPACK_REGISTRY_DEADLINE_MS` bounds how long
 * an `oci://` operation may go without progress. Credentials for `oci://`:
 * `ENVPACK_REGISTRY_TOKEN`, or `ENVPACK_REGISTRY_USER`/`_PASSWORD`, or the Docker config file
 * (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
 * @throws UsageError ENVPACK_USAGE_BAD_CONFIG (a Docker config that is not JSON, when read; a
 *   deadline that is not a positive whole number of ms)
 */
export function loadRegistryConfig(
  flags: RegistryFlags,
  environment: NodeJS.ProcessEnv = process.env,
): Readonly<RegistryOptions> | undefined {
  const url = flags.registry ?? (environment.ENVPACK_REGISTRY || undefined);
  if (url === undefined) return undefined;
  return Object.freeze({
    url,
    insecure:
      flags.insecure ??
      ["1", "true"].includes(environment.ENVPACK_REGISTRY_INSECURE ?? ""),
    deadlineMs: positiveMs(
      "ENVPACK_REGISTRY_DEADLINE_MS",
      environment.ENVPACK_REGISTRY_DEADLINE_MS,
    ),
    credentials: url.startsWith("oci://")
      ? registryCredentials(environment, hostOf(url))
      : undefined,
  });
}

/** A duration in ms from the environment, or undefined when unset. */
function positiveMs(
  key: string,
  value: string | undefined,
): number | undefined {
  if (value === undefined || value === "") return undefined;
  const ms = Number(value);
  if (!Number.isSafeInteger(ms) || ms <= 0)
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `${key} must be a positive whole number of milliseconds, got ${JSON.stringify(value)}`,
      { hint: `Set ${key} to e.g. 120000 (two minutes), or unset it.` },
    );
  return ms;
}

/**
 * Credentials from the environment, else from the Docker config. The file is read only when the
 * environment has none, so a broken one does not fail a job that does not need it.
 */
function registryCredentials(
  environment: NodeJS.ProcessEnv,
  host: string,
): RegistryCredentials | undefined {
  return (
    credentialsFrom({ env: environment, host }) ??
    credentialsFrom({
      env: environment,
      dockerConfig: readDockerConfig(environment),
      host,
    })
  );
}

function hostOf(url: string): string {
  return url.slice("oci://".length).split("/")[0] ?? "";
}

/** The Docker client's config (for `auths`), or undefined when there is none. */
function readDockerConfig(environment: NodeJS.ProcessEnv): unknown {
  const path = join(
    environment.DOCKER_CONFIG || join(homedir(), ".docker"),
    "config.json",
  );
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `the Docker config ${path} is not JSON: ${(error as Error).message}`,
      {
        hint: "Fix or remove it, or give credentials in ENVPACK_REGISTRY_USER/_PASSWORD.",
        cause: error,
      },
    );
  }
}
