// Telling "not there" apart from real file-system failures, and naming the failures a user can fix
// (an unwritable or full destination) with coded errors instead of internal ones.

import { access, readdir, rm, stat } from "node:fs/promises";
import { InputError } from "./errors.js";

/** True for ENOENT and ENOTDIR: the path (or a parent of it) does not exist as needed. */
export function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * Removes `path` (a tree with `recursive`) if it is there. Unlike `rm`'s `force`, a parent that is
 * not a directory (ENOTDIR: a cache "directory" that is a file) also means nothing to remove.
 */
export async function removeIfPresent(
  path: string,
  options: { recursive?: boolean } = {},
): Promise<void> {
  try {
    await rm(path, { ...options, force: true });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** The names in directory `dir`, none when it (or a parent of it) is missing; other errors thrown. */
export async function namesIfPresent(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
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

/** Whether `path` is a directory (through links); missing is false, other errors are thrown. */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

// EACCES/EPERM/EROFS: no permission or a read-only file system; ENOTDIR/EEXIST/EISDIR: a path
// component (or the target) is of the wrong type.
const UNWRITABLE = new Set([
  "EACCES",
  "EPERM",
  "EROFS",
  "ENOTDIR",
  "EISDIR",
  "EEXIST",
]);
const FULL = new Set(["ENOSPC", "EDQUOT"]);

/**
 * The coded error for a failed write to `destination` (a file or directory the user chose: `-o`,
 * `--out`, `--cache-dir`): ENVPACK_INPUT_OUTPUT_UNWRITABLE for permissions, read-only file systems
 * and path components of the wrong type, ENVPACK_INPUT_NO_SPACE for a full file system or quota.
 * Any other error is returned unchanged, for the caller to rethrow.
 */
export function writeFailure(
  error: unknown,
  destination: string,
  what = "output",
): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? "";
  const path = (error as NodeJS.ErrnoException | null)?.path ?? destination;
  if (FULL.has(code))
    return new InputError(
      "ENVPACK_INPUT_NO_SPACE",
      `no space left writing the ${what} ${destination} (${code})`,
      {
        hint: "Free space on that file system, or choose a destination on another one.",
        details: { path, destination, errno: code },
        cause: error,
      },
    );
  if (UNWRITABLE.has(code))
    return new InputError(
      "ENVPACK_INPUT_OUTPUT_UNWRITABLE",
      `cannot write the ${what} ${destination}: ${code} on ${path}`,
      {
        hint: "Choose a destination in a writable directory.",
        details: { path, destination, errno: code },
        cause: error,
      },
    );
  return error;
}
