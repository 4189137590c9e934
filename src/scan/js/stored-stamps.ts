// What the scan's remembered answers (package traversals, dependency closures) are checked
// against before use: stat stamps of lookup places, and reading a stored answer back.

import { readFileSync, statSync } from "node:fs";
import { isNotFound } from "../../core/light.js";
import type { PackageTrees } from "../npm/package-tree.js";

/** A path's stats as one string (`missing` when absent): a package installed there changes it. */
export function statStamp(path: string): string {
  const info = statSync(path, { throwIfNoEntry: false, bigint: true });
  return info === undefined
    ? "missing"
    : `${info.ino}:${info.mode}:${info.size}:${info.mtimeNs}`;
}

/** Whether every path of `layout` still has the stamp recorded with it. */
export function layoutHolds(
  layout: ReadonlyArray<readonly [path: string, stamp: string]>,
): boolean {
  for (const [path, stamp] of layout)
    if (statStamp(path) !== stamp) return false;
  return true;
}

/**
 * The JSON object stored at `path` when it has `format`, `scanner` and `key` as given and the
 * array fields `arrays`; null when it is absent, cut short, or of another shape (a lost or
 * damaged answer only costs finding it again).
 */
export function readStored<T extends object>(
  path: string,
  expected: { format: string; scanner: string; key: string },
  arrays: ReadonlyArray<keyof T & string>,
): T | null {
  let stored: unknown;
  try {
    stored = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return null;
    throw error;
  }
  if (stored === null || typeof stored !== "object") return null;
  const fields = stored as Record<string, unknown>;
  if (
    fields["format"] !== expected.format ||
    fields["scanner"] !== expected.scanner ||
    fields["key"] !== expected.key ||
    !arrays.every((name) => Array.isArray(fields[name]))
  )
    return null;
  return stored as T;
}

/** The strict tree stamp of a package directory through the build's walks; `missing` when gone. */
export function strictStampOf(trees: PackageTrees, dir: string): string {
  try {
    return trees(dir).strict;
  } catch (error) {
    if (isNotFound(error)) return "missing";
    throw error;
  }
}
