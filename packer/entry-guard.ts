// The safety checks of unpackBundle, entry by entry before anything is written: allowed types
// and modes, paths that stay inside the target, links judged against what the archive made.

import { posix } from "node:path";
import type { ReadEntry } from "tar";
import {
  isLinkInside,
  normaliseRelativePath,
  resolveInside,
  resolveLinkTarget,
} from "../src/core/light.js";

/**
 * Tar entry types a bundle may hold; everything else (devices, fifos, GNU sparse files, unknown
 * types) is refused. runtime/envpack-run allows the same (its listing shows them as `-dlh`).
 */
const ALLOWED_TYPES = new Set([
  "File",
  "OldFile",
  "ContiguousFile",
  "Directory",
  "SymbolicLink",
  "Link",
]);

/** Setuid and setgid bits: refused, never restored or silently dropped. */
const SET_ID_BITS = 0o6000;

/** What a checked path holds, as far as the archive has said so far. */
type Kind = "file" | "directory" | "symlink";

/**
 * Decides, entry by entry and before node-tar touches the disk, whether an entry is safe; keeps
 * what the archive has created so far (by canonical path) so that links can be judged.
 */
export class EntryGuard {
  readonly #root: string;
  readonly #kinds = new Map<string, Kind>();
  readonly #symlinks = new Map<string, string>();
  entries = 0;

  constructor(root: string) {
    this.#root = root;
  }

  /** Undefined when the entry may be unpacked, else why not. */
  check(rawPath: string, entry: ReadEntry): string | undefined {
    if (!ALLOWED_TYPES.has(entry.type))
      return `${entry.type} entries are not allowed`;
    if (((entry.mode ?? 0) & SET_ID_BITS) !== 0)
      return "setuid and setgid bits are not allowed";
    const path = normaliseRelativePath(rawPath);
    if (path === null || resolveInside(this.#root, path) === null)
      return "absolute path or .. component";
    if (path === "." && entry.type !== "Directory")
      return "replaces the bundle root";
    for (let dir = posix.dirname(path); dir !== "."; dir = posix.dirname(dir)) {
      if (this.#symlinks.has(dir)) return `written through the symlink ${dir}`;
    }
    if (this.#symlinks.has(path)) return "replaces a symlink";
    let kind: Kind;
    if (entry.type === "SymbolicLink") {
      const target = entry.linkpath ?? "";
      if (!isLinkInside(path, target))
        return `symlink to ${JSON.stringify(target)} leaves the bundle`;
      this.#symlinks.set(path, target);
      kind = "symlink";
    } else if (entry.type === "Link") {
      const target = normaliseRelativePath(entry.linkpath ?? "");
      if (target === null || resolveInside(this.#root, target) === null)
        return `hardlink to ${JSON.stringify(entry.linkpath)} leaves the bundle`;
      if (this.#kinds.get(target) !== "file")
        return `hardlink to ${JSON.stringify(entry.linkpath)}, which is not a file unpacked before it`;
      kind = "file";
    } else {
      kind = entry.type === "Directory" ? "directory" : "file";
    }
    this.#kinds.set(path, kind);
    this.entries++;
    return undefined;
  }

  /**
   * Once every entry is known: the first symlink that, followed through the bundle's other
   * symlinks, ends outside the root (`s -> .` then `l -> s/..` is lexically inside, really not).
   */
  escapingLink(): { path: string; reason: string } | undefined {
    const readLink = (path: string) => this.#symlinks.get(path);
    for (const [path, target] of this.#symlinks) {
      const resolved = resolveLinkTarget(path, target, readLink);
      if (resolved === null || resolveInside(this.#root, resolved) === null) {
        return {
          path,
          reason: `symlink to ${JSON.stringify(target)} leaves the bundle through another symlink, or loops`,
        };
      }
    }
    return undefined;
  }
}
