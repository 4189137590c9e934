// V8's code cache for the command line's own CommonJS files (main's bundle, the light api, the
// error classes): compiled once, their bytecode is kept on disk and the next process loads it
// instead of parsing and compiling the same functions again, as Python keeps .pyc files. Node 20
// has no compile cache of its own (module.enableCompileCache is Node 22), so the files are
// compiled through vm.Script with the cached data. Loaded before anything else: it reads its
// directory from the environment itself, and uses Node's builtins only.

import {
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import * as Module from "node:module";
import { homedir } from "node:os";
import { basename, dirname, join, sep } from "node:path";
import { Script } from "node:vm";

/** What {@link installCodeCache} needs: whose files, where, and which command runs. */
export interface CodeCacheOptions {
  /** The directory whose `.js` files (CommonJS) are compiled through the cache. */
  codeDir: string;
  /** The cache directory (one per Node version and architecture below it); null: no cache. */
  cacheDir: string | null;
  /**
   * What this process runs (the command's name): each command keeps its own cache, holding the
   * functions that command compiled, not only those of the first command that ran.
   */
  command: string;
  /**
   * `import()` as a module Node compiled itself runs it, for the compiled files' dynamic imports
   * (given to them as `require.envpackImport`): Node 20 loses the import callback of a script
   * compiled from cached data, and its vm option for one is experimental. Specifiers resolve
   * from its module, which must live in `codeDir`.
   */
  importModule: (specifier: string) => Promise<unknown>;
}

/** Node's CommonJS loader as far as this file reaches into it. */
interface CommonJsLoader {
  prototype: { _compile(content: string, filename: string): unknown };
  wrap(script: string): string;
  _resolveFilename(
    request: string,
    parent: unknown,
    isMain: boolean,
    options?: { paths?: string[] },
  ): string;
  _cache: Record<string, unknown>;
}

interface LoadedModule {
  exports: unknown;
  require(id: string): unknown;
}

/**
 * The cache directory from the environment: `ENVPACK_CODE_CACHE` (a directory, or `off`), else
 * `${XDG_CACHE_HOME:-~/.cache}/envpack-code`, with the Node version and architecture below it
 * (V8 refuses data of another version anyway). Null when turned off.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv): string | null {
  const chosen = env["ENVPACK_CODE_CACHE"];
  if (chosen === "off") return null;
  const root =
    chosen !== undefined && chosen !== ""
      ? chosen
      : join(
          env["XDG_CACHE_HOME"] || join(homedir(), ".cache"),
          "envpack-code",
        );
  return join(root, `${process.version}-${process.arch}`);
}

/** The command a CLI argv runs, as a cache file name part: its first plain word, or `none`. */
export function commandOf(args: readonly string[]): string {
  return args.find((arg) => /^[a-z][a-z-]{0,30}$/.test(arg)) ?? "none";
}

/**
 * Compiles every `.js` file loaded by `require` from `codeDir` through V8's code cache: the data
 * a previous process left for the same file (see {@link fileKey}), Node version and command is
 * used when V8 accepts it. At exit with status 0, the data of each file compiled without usable
 * data (none, or refused) is written atomically, replacing that file's data of older contents.
 * A cache that cannot be read or written only costs the compile it would have saved.
 */
export function installCodeCache(options: CodeCacheOptions): void {
  const { cacheDir, command } = options;
  if (cacheDir === null) return;
  const codeDir = options.codeDir.endsWith(sep)
    ? options.codeDir
    : options.codeDir + sep;
  const loader = Module as unknown as CommonJsLoader;
  const compile = loader.prototype._compile;
  /** Scripts compiled without usable data: theirs is written at exit. */
  const fresh: { file: string; stale: string; script: Script }[] = [];
  /**
   * Which installation the files are (their directory's inode, taken once): two installs of
   * envpack on one machine keep their data apart, not replacing each other's at every run.
   */
  let install: string | undefined;
  loader.prototype._compile = function (
    this: LoadedModule,
    content: string,
    filename: string,
  ) {
    if (!filename.startsWith(codeDir) || !filename.endsWith(".js"))
      return compile.call(this, content, filename);
    const key = fileKey(filename, content);
    install ??= statKey(codeDir)?.ino.toString();
    if (key === undefined || install === undefined)
      return compile.call(this, content, filename);
    const stale = `${basename(filename, ".js")}-${install}-`;
    const file = join(cacheDir, `${stale}${key}-${command}.bin`);
    const cachedData = readIfPresent(file);
    const script = new Script(loader.wrap(content), { filename, cachedData });
    if (cachedData === undefined || script.cachedDataRejected === true)
      fresh.push({ file, stale, script });
    const module = this;
    const require = Object.assign((id: string) => module.require(id), {
      resolve: (request: string, opts?: { paths?: string[] }) =>
        loader._resolveFilename(request, module, false, opts),
      cache: loader._cache,
      envpackImport: options.importModule,
    });
    const run = script.runInThisContext() as (...args: unknown[]) => unknown;
    return run.call(
      module.exports,
      module.exports,
      require,
      module,
      filename,
      dirname(filename),
    );
  };
  process.once("exit", (code) => {
    if (code !== 0 || fresh.length === 0) return;
    try {
      writeCaches(cacheDir, command, fresh);
    } catch (error) {
      // Unwritable, full, or taken by another user: the next process compiles again.
      if (!isFileSystemError(error)) throw error;
    }
  });
}

function writeCaches(
  cacheDir: string,
  command: string,
  fresh: { file: string; stale: string; script: Script }[],
): void {
  mkdirSync(cacheDir, { recursive: true });
  const present = readdirSync(cacheDir);
  for (const { file, stale, script } of fresh) {
    const temp = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(temp, script.createCachedData());
      renameSync(temp, file);
    } catch (error) {
      removeIfPresent(temp);
      throw error;
    }
    // The same file's data for older contents (a rebuild, an upgrade in place) is of no further
    // use: names of the same source file, installation and command with another key.
    const name = basename(file);
    for (const old of present)
      if (
        old !== name &&
        old.startsWith(stale) &&
        old.endsWith(`-${command}.bin`) &&
        /^\d+-\d+-\d+-\d+$/.test(
          old.slice(stale.length, old.length - `-${command}.bin`.length),
        )
      )
        removeIfPresent(join(cacheDir, old));
  }
}

/**
 * Which contents of `filename` a cache file holds the compiled form of, as V8 does not tell (it
 * checks only the source's length): its inode, size, mtime and ctime in nanoseconds, which any
 * rewrite or reinstall changes. Not a content hash: loading node:crypto cost more than half of
 * what the cache saves `--help`. Undefined when the file's size is not the text's (it changed
 * since Node read it): that file is compiled as usual.
 */
function fileKey(filename: string, content: string): string | undefined {
  const st = statKey(filename);
  if (st === undefined || st.size !== BigInt(Buffer.byteLength(content)))
    return undefined;
  return `${st.ino}-${st.size}-${st.mtimeNs}-${st.ctimeNs}`;
}

/** `path`'s stats in nanoseconds, or undefined when it cannot be statted. */
function statKey(path: string) {
  try {
    return statSync(path, { bigint: true });
  } catch (error) {
    if (isFileSystemError(error)) return undefined;
    throw error;
  }
}

function readIfPresent(file: string): Buffer | undefined {
  try {
    const data = readFileSync(file);
    return data.length > 0 ? data : undefined;
  } catch (error) {
    if (isFileSystemError(error)) return undefined;
    throw error;
  }
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if (!isFileSystemError(error)) throw error;
  }
}

/** An error from the file system (it has an errno code): a cache that is not there or not ours. */
function isFileSystemError(error: unknown): boolean {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === "string"
  );
}
