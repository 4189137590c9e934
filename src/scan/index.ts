// The scan entry point: validates entries, picks the language scanner and seals the manifest.

import { stat } from "node:fs/promises";
import { extname, resolve } from "node:path";
import {
  InputError,
  MANIFEST_SCHEMA_VERSION,
  UsageError,
  computeInputDigest,
  isNotFound,
  type Manifest,
  type OnEvent,
} from "../core/light.js";
import type { CondaEnvReader } from "../conda/index.js";
import type { PackageScans } from "./js/package-scans.js";
import {
  JS_EXTENSIONS,
  type ScanResult,
  type TraceLog,
} from "./scan-result.js";

/** Options of {@link scan}. */
export interface ScanOptions {
  /** Entry files (absolute, or relative to `cwd`): all JS/TS, or all Python. */
  entries: string[];
  /** Conda prefix for Python entries (absolute, or relative to `cwd`). Required for `.py` entries. */
  env?: string | undefined;
  /** Directory relative paths resolve against. */
  cwd: string;
  /** envpack's own version, recorded in the manifest's `generator`. */
  generatorVersion: string;
  /** See {@link ScannerOptions.parsePackages}. */
  parsePackages?: boolean | undefined;
  /** See {@link ScannerOptions.declared}. */
  declared?: boolean | undefined;
  /** What a traced run touched: its paths are {@link ScannerOptions.traced}. */
  traced?: TraceLog | undefined;
  /** See {@link ScannerOptions.include}. */
  include?: string[] | undefined;
  /**
   * Python: reads the Conda prefix (default: a read of its own); a build passes the reader its
   * packer uses, so both decide from one read of the environment.
   */
  readCondaEnv?: CondaEnvReader | undefined;
  /** JS: the imports of package files a build remembers (see PackageScans); default: parse all. */
  packageScans?: PackageScans | undefined;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Scans entry files into a manifest. Unresolved imports are data (`manifest.unresolved`).
 * @throws UsageError ENVPACK_USAGE_MIXED_ENTRIES, ENVPACK_USAGE_BAD_ARGUMENT
 * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND, ENVPACK_INPUT_ENTRY_UNSUPPORTED, ENVPACK_INPUT_ENV_*
 */
export async function scan(options: ScanOptions): Promise<Manifest> {
  if (options.entries.length === 0) {
    throw new UsageError("ENVPACK_USAGE_BAD_ARGUMENT", "no entry files given", {
      hint: "Pass at least one file, e.g. `envpack scan src/main.ts`.",
    });
  }
  const entries = [
    ...new Set(options.entries.map((e) => resolve(options.cwd, e))),
  ];
  await Promise.all(entries.map(checkEntry));
  const python = entries.filter((e) => extname(e) === ".py");
  if (python.length > 0 && python.length < entries.length) {
    throw new UsageError(
      "ENVPACK_USAGE_MIXED_ENTRIES",
      "entries mix Python and JavaScript/TypeScript files",
      {
        hint: "Scan Python apps and Node apps separately: one manifest describes one runtime.",
        details: { entries },
      },
    );
  }
  const common = {
    entries,
    parsePackages: options.parsePackages,
    declared: options.declared,
    traced: options.traced?.paths,
    include: options.include,
    onEvent: options.onEvent,
    signal: options.signal,
  };
  let result: ScanResult;
  if (python.length > 0) {
    const { scanPython } = await import("./python/index.js");
    result = await scanPython({
      ...common,
      prefix: resolve(options.cwd, requireEnv(options.env)),
      readEnv: options.readCondaEnv,
      trace: options.traced,
    });
  } else {
    const { scanJs } = await import("./js/index.js");
    result = await scanJs({ ...common, packageScans: options.packageScans });
  }
  const unsealed = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    generator: { name: "envpack" as const, version: options.generatorVersion },
    ...result,
  };
  return { ...unsealed, inputDigest: computeInputDigest(unsealed) };
}

function requireEnv(env: string | undefined): string {
  if (env === undefined || env === "") {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      "Python entries need a Conda environment",
      {
        hint: "Pass --env PREFIX or activate the environment so that $CONDA_PREFIX is set.",
      },
    );
  }
  return env;
}

async function checkEntry(entry: string): Promise<void> {
  let info;
  try {
    info = await stat(entry);
  } catch (error) {
    if (isNotFound(error)) {
      throw new InputError(
        "ENVPACK_INPUT_ENTRY_NOT_FOUND",
        `entry not found: ${entry}`,
        {
          hint: "Check the path; entries are files relative to the current directory.",
          details: { entry },
          cause: error,
        },
      );
    }
    throw error;
  }
  const ext = extname(entry);
  if (!info.isFile() || (ext !== ".py" && !JS_EXTENSIONS.includes(ext))) {
    throw new InputError(
      "ENVPACK_INPUT_ENTRY_UNSUPPORTED",
      `${entry} is not a ${[...JS_EXTENSIONS, ".py"].join(" ")} file`,
      {
        hint: "Pass the app's source entry file, not a directory or a build artefact.",
        details: { entry },
      },
    );
  }
}

export { JS_EXTENSIONS } from "./scan-result.js";
export type { TraceLog } from "./scan-result.js";

/**
 * Runs a Node or Python app once with envpack's trace hooks (see `runTraced` in
 * trace/run-traced.ts), loading the process machinery only when asked.
 * @throws InputError ENVPACK_INPUT_TRACE_FAILED
 */
export async function runTraced(
  command: string[],
  options: {
    cwd: string;
    runtime?: "node" | "python" | undefined;
    signal?: AbortSignal | undefined;
  },
): Promise<TraceLog> {
  const traced = await import("./trace/run-traced.js");
  return traced.runTraced(command, options);
}
export { rewriteSpecifiers } from "./js/rewrite-specifiers.js";
export { packageTreeDigest } from "./npm/package-catalog.js";
export { packageTreeStamp } from "./npm/package-tree.js";
export { PackageScans } from "./js/package-scans.js";
export { packageTrees, type PackageTrees } from "./npm/package-tree.js";
