// A stat stamp of an installed package's files: changes when any file is added, removed or edited.

import { createHash } from "node:crypto";
import { lstatSync, readdirSync } from "node:fs";
import { sep } from "node:path";

/**
 * `sha256:` over every entry of a package directory (nested `node_modules` excluded): its relative
 * path, mode, size, mtime (whole seconds: tools that copy times round below that) and inode. Reads no file contents: the cheap witness that a package's
 * tree is still the one it was (an edit changes mtime or size; a replaced file changes the inode).
 * Synchronous on purpose: thousands of small stats from the inode cache cost less in one loop
 * than as thread-pool round trips.
 */
export async function packageTreeStamp(dir: string): Promise<string> {
  const hash = createHash("sha256");
  // Lines are hashed in batches and paths joined by hand: per entry, path.join and a hash
  // update cost as much as the lstat itself (thousands of entries on every cache hit).
  let pending = "";
  const walk = (current: string, rel: string): void => {
    const names = readdirSync(current).sort();
    for (const name of names) {
      if (name === "node_modules") continue;
      const path = `${current}${sep}${name}`;
      const relPath = rel ? `${rel}/${name}` : name;
      const info = lstatSync(path);
      pending += `${relPath}\0${info.mode}\0${info.size}\0${Math.floor(info.mtimeMs / 1000)}\0${info.ino}\n`;
      if (pending.length >= 65536) {
        hash.update(pending);
        pending = "";
      }
      if (info.isDirectory()) walk(path, relPath);
    }
  };
  walk(dir, "");
  hash.update(pending);
  return `sha256:${hash.digest("hex")}`;
}
