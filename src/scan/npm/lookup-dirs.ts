// Where Node looks for packages from a set of directories: a package installed into one of these
// changes their stats, whatever else stays the same.

import { existsSync, readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { isNotFound } from "../../core/light.js";

/** Each of `dirs` and every directory above it, once. */
export function lookupAncestors(dirs: Iterable<string>): Set<string> {
  const ancestors = new Set<string>();
  for (const start of dirs) {
    for (let dir = start; !ancestors.has(dir); dir = dirname(dir)) {
      ancestors.add(dir);
      if (dirname(dir) === dir) break;
    }
  }
  return ancestors;
}

/**
 * The `node_modules` directory of each of `dirs` not itself named node_modules (missing ones too:
 * one made later is seen), and the `@scope` directories in those that exist.
 */
export function nodeModulesLookups(dirs: Iterable<string>): string[] {
  const paths: string[] = [];
  for (const dir of dirs) {
    if (basename(dir) === "node_modules") continue;
    const modules = join(dir, "node_modules");
    paths.push(modules);
    for (const name of scopesIn(modules)) paths.push(join(modules, name));
  }
  return paths;
}

function scopesIn(modules: string): string[] {
  // Most directories have no node_modules: a miss is answered without an exception and its stack.
  if (!existsSync(modules)) return [];
  try {
    return readdirSync(modules).filter((name) => name.startsWith("@"));
  } catch (error) {
    // A directory above the project this user may not search: Node's lookups skip it too.
    if (isNotFound(error) || (error as NodeJS.ErrnoException).code === "EACCES")
      return [];
    throw error;
  }
}
