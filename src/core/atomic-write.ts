// Atomic file creation: a temp file on the destination's file system, filled, flushed to disk,
// renamed over the destination; the temp never outlives the call.

import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Options of {@link writeAtomic}, {@link writeAtomicNamed} and {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /**
   * fsync the temp file before the rename (default true), so that after a crash the name never
   * points at blocks that were not written. Off only for files that are cheap to lose.
   */
  fsync?: boolean;
  /**
   * The directory of the temp file (default: the destination's). It must be on the same file
   * system; a store that lists its destination directory keeps temps elsewhere.
   */
  tempDir?: string;
}

/**
 * A fresh temp path for `path`: hidden, unique, ending in `.tmp` (so leftovers of a killed
 * process are recognisable), in `dir` (default: beside `path`).
 */
export function tempPathFor(path: string, dir = dirname(path)): string {
  return join(
    dir,
    `.${basename(path)}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`,
  );
}

/** The pid of the process that made a {@link tempPathFor} name, or undefined for another name. */
export function tempWriterPid(name: string): number | undefined {
  const pid = /^\..+\.(\d+)-[0-9a-f]+\.tmp$/.exec(name)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/**
 * Creates `path` atomically: `fill(temp)` writes the temp file any way it likes (a stream, a copy,
 * a hard link), then the temp is flushed and renamed to `path`. Readers see the old file or the
 * whole new one, never a part; on any failure the temp is removed and `path` is untouched. The
 * destination's directory is created when missing.
 * @returns what `fill` returned
 * @throws what `fill`, mkdir, fsync or rename throw (ENOENT, EACCES, ENOSPC…), unchanged
 */
export async function writeAtomic<T>(
  path: string,
  fill: (temp: string) => Promise<T>,
  options: AtomicWriteOptions = {},
): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempPathFor(path, options.tempDir);
  try {
    const value = await fill(temp);
    await commitAtomic(temp, path, options);
    return value;
  } catch (error) {
    // Renamed, the temp is gone: only a failure leaves one to remove.
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * As {@link writeAtomic}, for a file named by its own bytes (a content-addressed bundle): the
 * temp is made in `dir` and `fill` returns, with its result, the path the file gets.
 */
export async function writeAtomicNamed<T extends { path: string }>(
  dir: string,
  fill: (temp: string) => Promise<T>,
  options: AtomicWriteOptions = {},
): Promise<T> {
  await mkdir(dir, { recursive: true });
  const temp = tempPathFor(join(dir, "unnamed"), options.tempDir ?? dir);
  try {
    const value = await fill(temp);
    await commitAtomic(temp, value.path, options);
    return value;
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Writes `data` to `path` atomically (see {@link writeAtomic}). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  await writeAtomic(path, (temp) => writeFile(temp, data), options);
}

/**
 * Moves a filled temp file (made by {@link tempPathFor} on the destination's file system) to
 * `path`: flushed to disk first unless `fsync: false`, then renamed. The caller removes the temp
 * when this throws.
 * @throws what fsync or rename throw, unchanged
 */
export async function commitAtomic(
  temp: string,
  path: string,
  options: Omit<AtomicWriteOptions, "tempDir"> = {},
): Promise<void> {
  // Whoever filled it (a worker, copyFile, link) closed it.
  if (options.fsync ?? true) await syncFile(temp);
  await rename(temp, path);
}

/** Flushes a closed file to disk through a handle of its own. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
