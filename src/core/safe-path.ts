// Pure checks that keep archive paths and link targets inside their target directory.

import { isAbsolute, posix, resolve, sep } from "node:path";

/**
 * True for a non-empty relative POSIX path with no `..` segment, no NUL and no backslash: a path
 * that cannot leave the directory it is joined to (symlinks aside — see {@link resolveLinkTarget}).
 */
export function isSafeRelativePath(path: string): boolean {
  if (path === "" || path.includes("\0") || path.includes("\\")) return false;
  if (path.startsWith("/") || isAbsolute(path) || /^[A-Za-z]:/.test(path))
    return false;
  return !PARENT_SEGMENT.test(path);
}

/** A `..` segment anywhere in a POSIX path. */
const PARENT_SEGMENT = /(?:^|\/)\.\.(?:\/|$)/;

/**
 * The canonical spelling of a safe relative path (`./a//b/` → `a/b`, `.` for the root), or null
 * when {@link isSafeRelativePath} refuses it. Use it as the key when comparing archive paths.
 */
export function normaliseRelativePath(path: string): string | null {
  if (!isSafeRelativePath(path)) return null;
  return posix.normalize(path).replace(/\/+$/, "") || ".";
}

/** `root` joined with `rel`, or null when the result would not be inside `root` (or be `root`). */
export function resolveInside(root: string, rel: string): string | null {
  if (!isSafeRelativePath(rel)) return null;
  const base = resolve(root);
  const full = resolve(base, rel);
  return full === base ||
    full.startsWith(base.endsWith(sep) ? base : base + sep)
    ? full
    : null;
}

/**
 * Whether a symlink at `linkPath` (relative to the root) pointing at `target` stays inside the
 * root when read lexically, relative to the link's own directory. Necessary, not sufficient: a
 * `..` after another symlink can still climb out — {@link resolveLinkTarget} decides that.
 */
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

/** Symlinks followed before a resolution gives up, as Linux's ELOOP limit. */
const MAX_LINK_FOLLOWS = 40;

/**
 * Resolves a symlink at `linkPath` pointing at `target` the way the kernel will: component by
 * component from the link's directory, following every symlink met on the way (`readLink` gives
 * a root-relative path's link target, or undefined when it is not a symlink), with `..` applied
 * to the *resolved* parent. Returns the root-relative resolved path (`.` for the root), or null
 * when any step leaves the root, a target is absolute, or the links loop.
 */
export function resolveLinkTarget(
  linkPath: string,
  target: string,
  readLink: (path: string) => string | undefined,
): string | null {
  const resolved: string[] = [];
  let pending = [...posix.dirname(linkPath).split("/"), ...target.split("/")];
  let follows = 0;
  if (target === "" || target.startsWith("/") || target.includes("\0"))
    return null;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (resolved.length === 0) return null;
      resolved.pop();
      continue;
    }
    resolved.push(part);
    const next = readLink(resolved.join("/"));
    if (next === undefined) continue;
    if (++follows > MAX_LINK_FOLLOWS) return null;
    if (next === "" || next.startsWith("/") || next.includes("\0")) return null;
    resolved.pop();
    pending = [...next.split("/"), ...pending];
  }
  return resolved.length === 0 ? "." : resolved.join("/");
}
