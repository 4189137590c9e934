// The scan use case: scan entries, apply --strict, write the manifest atomically.

import { resolve } from "node:path";
import {
  InputError,
  UsageError,
  writeFailure,
  writeFileAtomic,
  type Manifest,
  type OnEvent,
  type UnresolvedEntry,
} from "../core/index.js";
import type { CondaEnvReader } from "../conda/index.js";
import { runTraced, scan as scanEntries } from "../scan/index.js";
import { envpackVersion } from "./version.js";

/** Options of {@link scan}. */
export interface ScanOptions {
  /** Entry files: all JS/TS or all Python. */
  entries: string[];
  /** Conda prefix for Python entries; defaults to `$CONDA_PREFIX` via the loaded config. */
  env?: string | undefined;
  /** Directory relative paths resolve against (default: `process.cwd()`). */
  cwd?: string | undefined;
  /** Fail with ENVPACK_INPUT_UNRESOLVED when the app has unresolved, non-optional imports. */
  strict?: boolean | undefined;
  /** Also write the manifest to this file (atomically). */
  output?: string | undefined;
  /** JS: follow imports inside packages (default true); off, a quick scan for registry lookups. */
  parsePackages?: boolean | undefined;
  /**
   * Ship only the import graph's closure: leave out the packages the app's package.json (or
   * requirements) declares that no import reaches (default false: they ship, reason `declared`).
   */
  onlyImported?: boolean | undefined;
  /**
   * Run the app once here with envpack's loader hooks and fs recording, and add what it loaded
   * or opened that the analysis missed (reason `traced`): the command's argv (a Node program),
   * or `[]` to run the first entry with this node. Node entries only. Nothing is written into the
   * project or the cache but the output manifest (the app's own writes are its own).
   */
  trace?: string[] | undefined;
  /**
   * Ship these too, with reason `included` (as `envpack.include` in the entry's package.json):
   * installed package names, or globs of app files relative to that package.json's directory.
   */
  include?: string[] | undefined;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Scans an app's entry files into a dependency manifest.
 * Unresolved imports are data in `manifest.unresolved` unless `strict` is set.
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT, ENVPACK_USAGE_MIXED_ENTRIES
 * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND, ENVPACK_INPUT_ENTRY_UNSUPPORTED, ENVPACK_INPUT_ENV_*,
 *   ENVPACK_INPUT_UNRESOLVED and ENVPACK_INPUT_SYNTAX_ERROR (under `strict`),
 *   ENVPACK_INPUT_OUTPUT_UNWRITABLE,
 *   ENVPACK_INPUT_NO_SPACE
 */
export async function scan(options: ScanOptions): Promise<Manifest> {
  return scanWith(options, undefined);
}

/**
 * {@link scan}, reading a Conda prefix through `readCondaEnv` (a build shares it with its packer).
 * @throws as {@link scan}
 */
export async function scanWith(
  options: ScanOptions,
  readCondaEnv: CondaEnvReader | undefined,
): Promise<Manifest> {
  const cwd = options.cwd ?? process.cwd();
  const traced =
    options.trace === undefined
      ? undefined
      : await traceApp(options.entries, options.trace, cwd, options.signal);
  const manifest = await scanEntries({
    entries: options.entries,
    env: options.env,
    readCondaEnv,
    cwd,
    generatorVersion: envpackVersion(),
    parsePackages: options.parsePackages,
    declared: options.onlyImported !== true,
    traced,
    include: options.include,
    onEvent: options.onEvent,
    signal: options.signal,
  });
  if (options.strict) {
    const broken = syntaxError(manifest);
    if (broken !== undefined) throw broken;
    const findings = strictFindings(manifest.unresolved);
    if (findings.length > 0) {
      const first = findings[0] as UnresolvedEntry;
      throw new InputError(
        "ENVPACK_INPUT_UNRESOLVED",
        `${findings.length} unresolved import${findings.length === 1 ? "" : "s"}, first: '${first.specifier}' at ${first.file}:${first.line} (${first.reason})`,
        {
          hint: "Install the missing packages or make the imports static; drop --strict to record them as findings.",
          details: { unresolved: findings },
        },
      );
    }
  }
  if (options.output !== undefined)
    await writeOutputFile(
      resolve(cwd, options.output),
      JSON.stringify(manifest, null, 2) + "\n",
    );
  return manifest;
}

/** Runs the traced command (default: the first entry with this node) and returns what it touched. */
async function traceApp(
  entries: string[],
  command: string[],
  cwd: string,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  if (entries.some((e) => e.endsWith(".py"))) {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      "--trace runs Node apps only",
      {
        hint: "Scan Python apps without --trace; list what they load dynamically in requirements.txt.",
      },
    );
  }
  const argv =
    command.length > 0
      ? command
      : [process.execPath, resolve(cwd, entries[0] ?? "")];
  return runTraced(argv, { cwd, signal });
}

/**
 * The error for the first app file (in the manifest's order) that does not parse, or undefined.
 * Such a file is listed with a `syntax-error` problem; packed, it would fail at run time.
 */
export function syntaxError(manifest: Manifest): InputError | undefined {
  const broken = manifest.files.filter(
    (f) => f.problem?.reason === "syntax-error",
  );
  const first = broken[0];
  if (first === undefined) return undefined;
  const at = [first.path, first.problem?.line, first.problem?.column]
    .filter((part) => part !== undefined)
    .join(":");
  return new InputError(
    "ENVPACK_INPUT_SYNTAX_ERROR",
    `${at}: ${first.problem?.message ?? "syntax error"}${broken.length > 1 ? ` (and ${broken.length - 1} more file${broken.length > 2 ? "s" : ""})` : ""}`,
    {
      hint: "Fix the file and build again; a bundle would fail when it loads it.",
      details: {
        files: broken.map((f) => ({ path: f.path, ...f.problem })),
      },
    },
  );
}

/** The findings --strict fails on: the app's own imports that are not guarded as optional. */
export function strictFindings(
  unresolved: UnresolvedEntry[],
): UnresolvedEntry[] {
  return unresolved.filter((u) => !u.optional && u.package === undefined);
}

/**
 * Writes a file the user asked for, atomically.
 * @throws InputError ENVPACK_INPUT_OUTPUT_UNWRITABLE or ENVPACK_INPUT_NO_SPACE (see writeFailure)
 */
export async function writeOutputFile(
  path: string,
  data: string | Uint8Array,
): Promise<void> {
  try {
    await writeFileAtomic(path, data);
  } catch (error) {
    throw writeFailure(error, path);
  }
}
