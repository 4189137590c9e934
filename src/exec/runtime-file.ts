// Finds envpack's own files of runtime/ (what runs on a worker), from the source tree or dist/.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The path of `runtime/<name>`, found upward from this module. */
export function runtimeFile(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "runtime", name);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`runtime/${name} not found next to envpack`);
}
