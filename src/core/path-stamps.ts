// Stat stamps of watched paths (a build's fingerprint): one string per path that changes when the
// path is edited, replaced, created or removed.

import { statSync } from "node:fs";
import { isNotFound } from "./fs-errors.js";
import { nativeStat, type NativeStat } from "./native-stat.js";

/**
 * Each path's stamp, through links: `ino:size:mtimeNs:ctimeNs`, `missing`, or `denied` (a
 * directory above a project this user may not search). By `native` (see nativeStat) when it
 * can, else (or with `native` null) in JavaScript: the same strings.
 * @throws file-system errors other than a missing or unsearchable path, as they are
 */
export function pathStamps(
  paths: readonly string[],
  native: NativeStat | null = nativeStat(),
): string[] {
  const stamps = native?.stamps(paths) ?? [];
  return paths.map((path, i) => stamps[i] ?? stampOf(path));
}

function stampOf(path: string): string {
  try {
    // A missing path (most lookup places) is answered without an exception and its stack.
    const info = statSync(path, { bigint: true, throwIfNoEntry: false });
    if (info === undefined) return "missing";
    return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch (error) {
    if (isNotFound(error)) return "missing";
    if ((error as NodeJS.ErrnoException).code === "EACCES") return "denied";
    throw error;
  }
}
