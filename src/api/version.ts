// envpack's own version, read once from its package.json.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/** The version in envpack's package.json (works from `src/` under a test runner and from `dist/`). */
export function envpackVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const json = JSON.parse(
        readFileSync(join(dir, "package.json"), "utf8"),
      ) as { name?: string; version?: string };
      if (json.name === "envpack" && json.version)
        return (cached = json.version);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(
        "envpack's package.json not found above " +
          fileURLToPath(import.meta.url),
      );
    dir = parent;
  }
}
