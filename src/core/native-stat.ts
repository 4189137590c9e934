// envpack's native batch stats (native/tree-stat.c, built by `npm install` into build/Release/):
// thousands of stats per call with no Stats object each. Optional: without it every caller
// computes the same answer in JavaScript.

import { createRequire } from "node:module";
import { join } from "node:path";
import { envpackPackageDir } from "./own-files.js";

/** The addon's API version this code was written for (`TREE_STAT_VERSION` in tree-stat.c). */
const VERSION = 2;

/**
 * The native functions. Each answers `undefined` (or, in `stamps`, leaves a hole) where it cannot
 * give exactly what the JavaScript code gives (an error other than a missing path, a name that is
 * not ASCII, a number past 2^53): the caller then computes it in JavaScript, errors included.
 */
export interface NativeStat {
  /** {@link isTreeUnchanged}'s answer for `dir` and a walk's lines. */
  checkTree(dir: string, lines: string): boolean | undefined;
  /**
   * Starts {@link checkTree} of each walk (`dirs[i]` with `lines[i]`) on threads of its own and
   * returns the verdict of walk `index`: its thread's (waited for while it checks), or checked on
   * the calling thread when no thread has begun it. Undefined when the arrays differ in length.
   * Absent from an addon built before it.
   */
  checkTrees?(
    dirs: readonly string[],
    lines: readonly string[],
  ): ((index: number) => boolean | undefined) | undefined;
  /** A walk of `dir`: its lines and the text its coarse stamp hashes. */
  walkTree(dir: string): [lines: string, stampText: string] | undefined;
  /** A stamp per path: `ino:size:mtimeNs:ctimeNs` (through links), `missing` or `denied`. */
  stamps(paths: readonly string[]): Array<string | undefined>;
  /**
   * The file at `path` hashed as `importlib.util.source_hash` does (SipHash-c-d keyed by `key`):
   * 24 bytes, little-endian: the hash (8), the file's length (8) and its mtime as a timestamp
   * .pyc's header holds it (4: `int(st_mtime)` modulo 2**32, then 4 zero bytes); undefined on any
   * error. The pack worker loads the file {@link nativeStatFile} names (hash-based-pyc.mjs).
   */
  sourceHash(
    path: string,
    key: number,
    c: number,
    d: number,
  ): Buffer | undefined;
}

let loaded: NativeStat | null | undefined;
let loadedFile: string | null = null;

/** The native batch stats of this install, loaded once; null when the addon is absent or does not load. */
export function nativeStat(): NativeStat | null {
  if (loaded === undefined) {
    const file = join(
      envpackPackageDir(),
      "build",
      "Release",
      "tree_stat.node",
    );
    loaded = loadNativeStat(file);
    loadedFile = loaded === null ? null : file;
  }
  return loaded;
}

/**
 * The file of {@link nativeStat}'s addon, for a worker thread to require as it is (its version
 * and loading were checked here, once for every thread); null when there is none to use.
 */
export function nativeStatFile(): string | null {
  nativeStat();
  return loadedFile;
}

/** The addon at `file`; null when it is missing, does not load here, or has another API version. */
export function loadNativeStat(file: string): NativeStat | null {
  let addon: (NativeStat & { version?: unknown }) | undefined;
  try {
    addon = createRequire(import.meta.url)(file) as NativeStat & {
      version?: unknown;
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Not built (no compiler at install), or built for another Node or machine.
    if (code === "MODULE_NOT_FOUND" || code === "ERR_DLOPEN_FAILED")
      return null;
    throw error;
  }
  return addon.version === VERSION ? addon : null;
}
