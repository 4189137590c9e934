// Materialises a fixtures/scan/<case>/ directory into a temp dir: `_node_modules` becomes
// `node_modules` (installed trees are never committed) and case.json `links` become symlinks.

import {
  cp,
  mkdir,
  readFile,
  readdir,
  rename,
  symlink,
} from "node:fs/promises";
import { dirname, join } from "node:path";

/** A scan case's settings. */
export interface ScanCase {
  description: string;
  entries: string[];
  /** "conda": scan against the Conda fixture prefix. */
  env?: "conda";
  /** Symlinks to create, path → target (relative to the case root). */
  links?: Record<string, string>;
}

/** Reads a case's settings. */
export async function readCase(caseDir: string): Promise<ScanCase> {
  return JSON.parse(
    await readFile(join(caseDir, "case.json"), "utf8"),
  ) as ScanCase;
}

/** Copies a case into `dest` and lays out its node_modules and links. */
export async function materialiseCase(
  caseDir: string,
  dest: string,
  settings: ScanCase,
): Promise<void> {
  await cp(caseDir, dest, {
    recursive: true,
    filter: (src) => !/[/\\](case|expected)\.json$/.test(src),
  });
  await renameNodeModules(dest);
  for (const [path, target] of Object.entries(settings.links ?? {})) {
    await mkdir(dirname(join(dest, path)), { recursive: true });
    await symlink(target, join(dest, path));
  }
}

async function renameNodeModules(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    let path = join(dir, entry.name);
    if (entry.name === "_node_modules") {
      const renamed = join(dir, "node_modules");
      await rename(path, renamed);
      path = renamed;
    }
    await renameNodeModules(path);
  }
}
