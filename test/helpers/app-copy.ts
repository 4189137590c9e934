// Copies of the installed fixture apps, so a test can edit, move or break one freely.

import { cp } from "node:fs/promises";
import { join } from "node:path";
import { inject } from "vitest";
import { tempDir } from "./temp-dir.js";

/** A copy of fixture app `name` (with its installed node_modules) at a fresh path. */
export async function appCopy(name: string): Promise<string> {
  const source = inject("fixtures").apps[name];
  if (source === undefined)
    throw new Error(`the ${name} fixture app was not installed`);
  const dir = join(await tempDir(`envpack-${name}-`), name);
  await cp(source, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}
