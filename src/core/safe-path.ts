// Pure checks that keep archive paths inside their target directory.

import { isAbsolute, posix, resolve, sep } from "node:path";

/**
 * True for a non-empty relative POSIX path with no `..`, no `.`-only segment games, no NUL and
 * no backslash: a path that cannot leave the directory it is joined to.
 */
export function isSafeRelativePath(path: string): boolean {
  if (path === "" || path.includes("\0") || path.includes("\\")) return false;
  if (path.startsWith("/") || isAbsolute(path) || /^[A-Za-z]:/.test(path))
    return false;
  return !path.split("/").some((segment) => segment === "..");
}

/** `root` joined with `rel`, or null when the result would not be inside `root`. */
export function resolveInside(root: string, rel: string): string | null {
  if (!isSafeRelativePath(rel)) return null;
  const full = resolve(root, rel);
  return full === root ||
    full.startsWith(root.endsWith(sep) ? root : root + sep)
    ? full
    : null;
}

/** Whether a symlink at `linkPath` (relative to the root) pointing at `target` stays inside the root. */
export function isLinkInside(linkPath: string, target: string): boolean {
  if (
    target === "" ||
    target.startsWith("/") ||
    isAbsolute(target) ||
    target.includes("\0")
  )
    return false;
  const joined = posix.normalize(posix.join(posix.dirname(linkPath), target));
  return (
    joined !== ".." && !joined.startsWith("../") && !joined.startsWith("/")
  );
}
