// The modules compiled into a prefix's Python interpreter (sys, builtins, posix, _io, …), which have no file.

import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  InputError,
  compare,
  isNotFound,
  sha256Hex,
  writeFailure,
  writeFileAtomic,
} from "../../core/light.js";

/** The first line of a remembered answer; another is asked again. */
const FORMAT = "envpack-builtins/1";

/** Per interpreter (its binary's and libpython's path and stats): the answer never changes while they don't. */
const cache = new Map<string, Promise<ReadonlySet<string>>>();

/**
 * Built-in and frozen module names of the prefix's interpreter.
 *
 * Asking the interpreter itself (`sys.builtin_module_names` plus the frozen modules) is the only
 * exact source: the compiled-in table also holds `sys`, `builtins`, `marshal` and `_warnings`,
 * whose init functions are not named `PyInit_<name>`, so reading symbol names out of libpython
 * misses them. It runs with `-I -S` (no site, no environment, no user directory), so nothing of
 * the prefix's packages executes. When the interpreter cannot run here (a prefix for another
 * platform), the `PyInit_<name>` symbols of libpython and the executable are the fallback.
 * With `memoDir`, the answer is remembered there under the stats of the interpreter binary and
 * libpython (where a shared build compiles the table in), so another process need not ask.
 */
export async function builtinModules(
  prefix: string,
  majorMinor: string,
  options: { memoDir?: string | undefined; signal?: AbortSignal } = {},
): Promise<ReadonlySet<string>> {
  const python = join(prefix, "bin", `python${majorMinor}`);
  const key = [
    python,
    stampOf(python),
    stampOf(join(prefix, "lib", `libpython${majorMinor}.so.1.0`)),
  ].join("\0");
  let pending = cache.get(key);
  if (!pending) {
    pending = answer(prefix, majorMinor, key, options);
    cache.set(key, pending);
    pending.catch(() => cache.delete(key));
  }
  return pending;
}

async function answer(
  prefix: string,
  majorMinor: string,
  key: string,
  options: { memoDir?: string | undefined; signal?: AbortSignal },
): Promise<ReadonlySet<string>> {
  const file =
    options.memoDir === undefined
      ? undefined
      : join(options.memoDir, `${sha256Hex(key)}.txt`);
  const remembered = file === undefined ? undefined : await readAnswer(file);
  if (remembered !== undefined) return remembered;
  const python = join(prefix, "bin", `python${majorMinor}`);
  const names =
    (await askInterpreter(python, options.signal)) ??
    (await initSymbols(prefix, majorMinor));
  if (file !== undefined) await rememberAnswer(file, names);
  return names;
}

/** A remembered answer, or undefined when there is none (or it was cut short). */
async function readAnswer(
  file: string,
): Promise<ReadonlySet<string> | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const [format, ...names] = text.split("\n");
  if (format !== FORMAT || names.pop() !== "") return undefined;
  return new Set(names);
}

/** Cheap to lose: without fsync, and a cache that cannot be written only means asking again. */
async function rememberAnswer(
  file: string,
  names: ReadonlySet<string>,
): Promise<void> {
  try {
    await writeFileAtomic(file, [FORMAT, ...names, ""].join("\n"), {
      fsync: false,
    });
  } catch (error) {
    if (!(writeFailure(error, file) instanceof InputError)) throw error;
  }
}

/** The stats that change when a file is replaced or edited, or `missing`. */
function stampOf(path: string): string {
  const info = statSync(path, { bigint: true, throwIfNoEntry: false });
  return info === undefined
    ? "missing"
    : `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

const PROBE =
  "import sys, _imp\n" +
  "names = set(sys.builtin_module_names)\n" +
  "names.update(getattr(_imp, '_frozen_module_names', lambda: ())())\n" +
  "print('\\n'.join(sorted(names)))\n";

/**
 * The interpreter's own answer, or undefined when it cannot run here (or fails). Through
 * child_process rather than execa (STYLE §8), argued: this one probe has a fixed argv, a few KB of
 * output and nothing to stream, and execa's module graph cost a cold Conda build ~30 ms of CPU on
 * its critical path for it (execa was loaded for nothing else). What execa's options gave is kept:
 * the timeout, the cancel signal, and a hung interpreter killed outright (SIGKILL at the timeout
 * rather than SIGTERM then SIGKILL: `-I -S` runs no code of the prefix's that could clean up).
 * The CLI ends by its exit code, never `process.exit`, so a probe under way is waited for, not
 * orphaned.
 */
function askInterpreter(
  python: string,
  signal?: AbortSignal,
): Promise<Set<string> | undefined> {
  return new Promise((resolve, reject) => {
    execFile(
      python,
      ["-I", "-S", "-c", PROBE],
      {
        encoding: "utf8",
        timeout: 20_000,
        killSignal: "SIGKILL",
        ...(signal ? { signal } : {}),
      },
      (error, stdout) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        if (error !== null) {
          resolve(undefined);
          return;
        }
        const names = stdout
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l !== "");
        resolve(names.length > 0 ? new Set(names) : undefined);
      },
    );
  });
}

async function initSymbols(
  prefix: string,
  majorMinor: string,
): Promise<Set<string>> {
  const names = new Set<string>();
  const marker = Buffer.from("PyInit_");
  for (const file of [
    join("lib", `libpython${majorMinor}.so.1.0`),
    join("lib", `libpython${majorMinor}.dylib`),
    join("bin", `python${majorMinor}`),
  ]) {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(prefix, file));
    } catch (error) {
      if (isNotFound(error)) continue;
      throw error;
    }
    for (
      let at = bytes.indexOf(marker);
      at >= 0;
      at = bytes.indexOf(marker, at + marker.length)
    ) {
      let end = at + marker.length;
      while (end < bytes.length && isNameByte(bytes[end] as number)) end++;
      if (end > at + marker.length)
        names.add(bytes.toString("latin1", at + marker.length, end));
    }
  }
  return new Set([...names].sort(compare));
}

function isNameByte(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    b === 0x5f
  );
}
