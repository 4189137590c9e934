// The environment of a process inside an unpacked bundle: one definition for every place that
// starts one (the local and Work Queue backends, `envpack run`). runtime/envpack-run (POSIX sh,
// which cannot import this) does the same; test/core/bundle-env.test.ts runs it and checks.

/**
 * Variables a process inside a bundle does not inherit: they point at the host's modules,
 * interpreter or options, which the bundle replaces.
 */
export const BUNDLE_ENV_CLEARED = [
  "NODE_OPTIONS",
  "NODE_PATH",
  "PYTHONPATH",
  "PYTHONHOME",
] as const;

/**
 * `base` (a process's environment) as a process inside the bundle unpacked at `dir` sees it: the
 * bundle's `bin/` first on PATH, `ENVPACK_ENV` naming `dir`, {@link BUNDLE_ENV_CLEARED} removed.
 * Returns a new object.
 */
export function bundleEnv(
  base: Readonly<Record<string, string | undefined>>,
  dir: string,
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...base };
  for (const key of BUNDLE_ENV_CLEARED) delete out[key];
  out["PATH"] =
    base["PATH"] === undefined || base["PATH"] === ""
      ? `${dir}/bin`
      : `${dir}/bin:${base["PATH"]}`;
  out["ENVPACK_ENV"] = dir;
  return out;
}
