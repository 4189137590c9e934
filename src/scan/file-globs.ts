// Listing a project's files and matching them against include globs, for every scanner.

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { isNotFound } from "../core/light.js";

const SKIPPED: ReadonlySet<string> = new Set(["node_modules", ".git"]);

/**
 * Regular files under `dir`, sorted, at most `limit`: symlinked directories are not followed,
 * and directories whose name or absolute path is in `skip` (default node_modules, .git) not entered.
 */
export async function listFiles(
  dir: string,
  limit: number,
  skip: ReadonlySet<string> = SKIPPED,
): Promise<string[]> {
  const out: string[] = [];
  async function walk(current: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    for (const entry of entries) {
      if (out.length >= limit) return;
      const path = join(current, entry.name);
      if (entry.isDirectory() && !skip.has(entry.name) && !skip.has(path))
        await walk(path);
      else if (entry.isFile()) out.push(path);
    }
  }
  await walk(dir);
  return out.sort();
}

/**
 * A glob over POSIX relative paths as a regular expression: `**` any depth, `*` and `?` within
 * one segment; a pattern naming a directory also matches everything under it.
 */
export function globPattern(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string;
    if (char === "*" && glob[i + 1] === "*") {
      source += ".*";
      i++;
      if (glob[i + 1] === "/") i++;
    } else if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else source += char.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source.replace(/\/$/, "")}(?:/.*)?$`);
}
