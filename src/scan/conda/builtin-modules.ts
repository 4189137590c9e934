// The modules compiled into a prefix's Python interpreter (sys, builtins, posix, _io, …), which have no file.

import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { compare, isNotFound } from "../../core/light.js";

/** Per interpreter binary (path, size, mtime): the answer never changes while the file doesn't. */
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
 */
export async function builtinModules(
  prefix: string,
  majorMinor: string,
  signal?: AbortSignal,
): Promise<ReadonlySet<string>> {
  const python = join(prefix, "bin", `python${majorMinor}`);
  let key = python;
  try {
    const info = await stat(python);
    key = `${python}\0${info.size}\0${info.mtimeMs}`;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  let pending = cache.get(key);
  if (!pending) {
    pending = askInterpreter(python, signal).then(
      (names) => names ?? initSymbols(prefix, majorMinor),
    );
    cache.set(key, pending);
    pending.catch(() => cache.delete(key));
  }
  return pending;
}

const PROBE =
  "import sys, _imp\n" +
  "names = set(sys.builtin_module_names)\n" +
  "names.update(getattr(_imp, '_frozen_module_names', lambda: ())())\n" +
  "print('\\n'.join(sorted(names)))\n";

async function askInterpreter(
  python: string,
  signal?: AbortSignal,
): Promise<Set<string> | undefined> {
  const { execa } = await import("execa");
  const result = await execa(python, ["-I", "-S", "-c", PROBE], {
    reject: false,
    timeout: 20_000,
    forceKillAfterDelay: 2_000,
    cleanup: true,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  if (result.isCanceled) signal?.throwIfAborted();
  if (result.failed || result.exitCode !== 0) return undefined;
  const names = result.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return names.length > 0 ? new Set(names) : undefined;
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
