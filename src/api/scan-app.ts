// The scan use case: scan entries, apply --strict, write the manifest atomically.

import { join, resolve } from "node:path";
import {
  InputError,
  settleAll,
  writeFailure,
  writeFileAtomic,
  type Manifest,
  type OnEvent,
  type UnresolvedEntry,
} from "../core/light.js";
import type { CondaEnvReader } from "../conda/index.js";
import type { PackageScans, TraceLog } from "../scan/index.js";
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
   * Run the app once here with envpack's hooks and add what it loaded or opened that the analysis
   * missed (reason `traced`; `manifest.trace` lists what the analysis ships that the run never
   * loaded): the command's argv, or `[]` to run the first entry with this node (Node entries) or
   * with the environment's `bin/python` (Python entries). Node apps are traced through loader
   * hooks and fs recording, Python apps through an audit hook on `import` and `open`. Nothing is
   * written into the project or the cache but the output manifest (the app's own writes are its
   * own).
   */
  trace?: string[] | undefined;
  /**
   * Ship these too, with reason `included` (as `envpack.include` in the entry's package.json):
   * installed package names, or globs of app files relative to that package.json's directory.
   */
  include?: string[] | undefined;
  /**
   * A cache directory to remember what the scan found in installed packages' files (under
   * `scan/`, as builds do) and the package trees it walked: a later scan parses only the files of
   * packages changed since, and lists no directory of a package whose entries all kept their
   * stats. The manifest is the same with or without it; a store that cannot be written is left
   * alone.
   */
  cacheDir?: string | undefined;
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
  if (options.cacheDir === undefined) return scanWith(options, {});
  const [{ PackageScans, packageScansFile }, { rememberedTrees }] =
    await Promise.all([
      import("../scan/light.js"),
      import("./stored-walks.js"),
    ]);
  const cwd = options.cwd ?? process.cwd();
  const { trees, save } = await rememberedTrees(
    options.cacheDir,
    options.entries,
    cwd,
  );
  const store = packageScansFile(
    join(options.cacheDir, "scan"),
    options.entries.map((e) => resolve(cwd, e)),
  );
  const packageScans = new PackageScans(store, envpackVersion(), trees);
  const manifest = await scanWith(options, { packageScans });
  try {
    await settleAll([packageScans.save(), save()]);
  } catch (error) {
    // The scan's result stands without its store: a read-only or full cache costs parsing.
    if (!(writeFailure(error, store) instanceof InputError)) throw error;
    options.onEvent?.({
      type: "debug",
      message: `package scans not remembered: ${(error as Error).message}`,
    });
  }
  return manifest;
}

/** What a build's scan reads through, shared with the rest of the build. */
export interface ScanReaders {
  /** Reads a Conda prefix (a build shares it with its packer). */
  readCondaEnv?: CondaEnvReader | undefined;
  /** Remembered imports of npm package files (a build's, in its cache directory). */
  packageScans?: PackageScans | undefined;
}

/**
 * {@link scan}, reading through the build's `readers`.
 * @throws as {@link scan}
 */
export async function scanWith(
  options: ScanOptions,
  readers: ScanReaders,
): Promise<Manifest> {
  const cwd = options.cwd ?? process.cwd();
  const traced =
    options.trace === undefined
      ? undefined
      : await traceApp(options, options.trace, cwd);
  // The scan layer loads with the first scan: the CLI's start-up path imports this module.
  const { scan: scanEntries } = await import("../scan/index.js");
  const manifest = await scanEntries({
    entries: options.entries,
    env: options.env,
    readCondaEnv: readers.readCondaEnv,
    packageScans: readers.packageScans,
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

/**
 * Runs the traced command (default: the first entry with this node, or a Python entry with the
 * environment's python) and returns what it touched. Python entries without an environment are
 * not run: the scan refuses them.
 */
async function traceApp(
  options: ScanOptions,
  command: string[],
  cwd: string,
): Promise<TraceLog | undefined> {
  const entry = resolve(cwd, options.entries[0] ?? "");
  const python = options.entries.some((e) => e.endsWith(".py"));
  if (python && (options.env === undefined || options.env === "")) return;
  const argv =
    command.length > 0
      ? command
      : python
        ? [join(resolve(cwd, options.env as string), "bin", "python"), entry]
        : [process.execPath, entry];
  const { runTraced } = await import("../scan/index.js");
  return runTraced(argv, {
    cwd,
    runtime: python ? "python" : "node",
    signal: options.signal,
  });
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

/**
 * The findings --strict fails on: the app's own imports that are not guarded as optional and
 * that no traced run resolved.
 */
export function strictFindings(
  unresolved: UnresolvedEntry[],
): UnresolvedEntry[] {
  return unresolved.filter(
    (u) =>
      !u.optional && u.package === undefined && u.resolvedByTrace === undefined,
  );
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
