// Shared unpacked trees (layers, relocated bases) are read-only, directories included, so no
// bundle can change what another one uses; removing one gives its directories their write bit back.

import { chmod, lstat, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { settleAll } from "../../src/core/light.js";

/**
 * Clears the write bits of `dir` and of every file and directory under it (symlinks are left
 * alone: their modes mean nothing and chmod would follow them), except the top-level entry
 * named `except` and what it holds. A directory's entries are handled together, and a file
 * already without write bits (a layer's, hard-linked) is left as it is.
 */
export async function makeReadOnly(
  dir: string,
  options: { except?: string } = {},
): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  await settleAll(
    entries.map((entry) => {
      if (entry.name === options.except) return Promise.resolve();
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return makeReadOnly(path);
      return entry.isFile() ? clearWriteBits(path) : Promise.resolve();
    }),
  );
  await clearWriteBits(dir);
}

async function clearWriteBits(path: string): Promise<void> {
  const { mode } = await lstat(path);
  if ((mode & 0o222) !== 0) await chmod(path, mode & 0o7555);
}

/**
 * Removes `path` (absent is fine), first giving its directories their write bit back when a
 * read-only one refuses the removal.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") throw error;
    await makeDirsWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeDirsWritable(dir: string): Promise<void> {
  const info = await lstat(dir);
  if (!info.isDirectory()) return;
  await chmod(dir, (info.mode & 0o7777) | 0o700);
  for (const entry of await readdir(dir, { withFileTypes: true }))
    if (entry.isDirectory()) await makeDirsWritable(join(dir, entry.name));
}
