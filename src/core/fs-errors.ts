// Telling "not there" apart from real file-system failures.

import { access } from "node:fs/promises";

/** True for ENOENT and ENOTDIR: the path (or a parent of it) does not exist as needed. */
export function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Whether `path` exists; other errors (permissions, I/O) are thrown, not taken for "no". */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
