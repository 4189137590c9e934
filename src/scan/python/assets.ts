// The app files a Python module's self-relative paths name: a file, or a directory's files within
// the asset budget.

import { realpath, stat } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { isNotFound, type OnEvent } from "../../core/light.js";
import { assetDirectoryFiles } from "../asset-directory.js";
import type { AssetPathSite } from "./asset-paths.js";

/** Not entered when a directory ships as assets: bytecode caches and what the JS side skips. */
export const ASSET_SKIPPED: ReadonlySet<string> = new Set([
  "__pycache__",
  "node_modules",
  ".git",
]);

/** A self-relative path found in `file` (absolute, real). */
export interface PendingAsset {
  file: string;
  site: AssetPathSite;
}

/**
 * The real paths of the files the sites name that exist inside `project` (and not inside the
 * prefix): a file itself; a directory (not the module's own directory or one of its parents,
 * which hold code) all its files, unless over the asset budget (then a warning). A path that does
 * not exist (an output file, a cache) names nothing.
 */
export async function assetFiles(
  pending: readonly PendingAsset[],
  where: { project: string; prefix: string; onEvent?: OnEvent | undefined },
): Promise<string[]> {
  const prefix = await realpath(where.prefix);
  const out: string[] = [];
  for (const { file, site } of pending) {
    const own = dirname(file);
    let target: string;
    try {
      target = await realpath(join(own, ...site.parts));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (isNotFound(error) || code === "ENOTDIR") continue;
      throw error;
    }
    const inside = (dir: string, path: string) =>
      path === dir || path.startsWith(dir + sep);
    if (!inside(where.project, target) || inside(prefix, target)) continue;
    if (inside(target, own)) continue;
    const info = await stat(target);
    if (info.isFile()) out.push(target);
    else if (info.isDirectory()) {
      const files = await assetDirectoryFiles(
        target,
        {
          how: `named at ${file}:${site.line}`,
          file,
          line: site.line,
        },
        where.onEvent,
        ASSET_SKIPPED,
      );
      for (const f of files ?? []) out.push(await realpath(f));
    }
  }
  return out;
}
