// The memo stores builds and scans keep in the cache directory, and their pruning by `cache gc`.
// An entry is one file, written whole by rename and checked by its reader, so removing one (an
// unlink is atomic) makes the next build redo that work, never read a part of it.

import type { Stats } from "node:fs";
import { lstat, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  isNotFound,
  namesIfPresent,
  processRuns,
  tempWriterPid,
} from "../core/light.js";

/** A memo store: a directory of one file per entry. */
interface MemoStore {
  /** Under the cache directory. */
  dir: string;
  /** Name endings of entries in a format no reader uses any more. */
  retired?: string[];
}

/**
 * Every memo store (a test builds and scans real Node and Conda apps and fails on a cache file
 * outside them and the blob store). `fingerprints/*.json` is the fingerprint format before `.fp`;
 * `scan/npm/*.json` held one package each, before one `.scans` file per set of entries.
 */
export const MEMO_STORES: readonly MemoStore[] = [
  { dir: "fingerprints", retired: [".json"] },
  { dir: "scan/walks" },
  { dir: "scan/npm", retired: [".json"] },
  { dir: "scan/npm-traversals" },
  { dir: "scan/npm-closures" },
  { dir: "scan/app" },
  { dir: "compiled" },
  { dir: "conda/builtins" },
];

/**
 * Records of packages edited in place: state, not memo (losing one could hide an edit), so they
 * go only once their project is gone (see isOrphanedTreeRecord).
 */
export const PACKAGE_TREES_DIR = "package-trees";

/**
 * How long after its access time a memo entry may have been read: with `relatime` (Linux's
 * default) a read moves the access time only when it is older than the last write or a day.
 */
const ACCESS_TIME_SLACK_MS = 24 * 60 * 60 * 1000;

/**
 * When a file was last used, at the latest: its access or modification time, whichever is later,
 * plus a day for `relatime` (Unix ms).
 */
export function lastUseOf(info: Stats): number {
  return Math.max(info.atimeMs, info.mtimeMs) + ACCESS_TIME_SLACK_MS;
}

/** Files and bytes of memo entries. */
export interface MemoBytes {
  files: number;
  bytes: number;
}

/** Every file in the memo stores and package-trees/, temps included. */
export async function memoUsage(cacheDir: string): Promise<MemoBytes> {
  const total: MemoBytes = { files: 0, bytes: 0 };
  for (const dir of [...MEMO_STORES.map((s) => s.dir), PACKAGE_TREES_DIR])
    for (const file of await filesIn(join(cacheDir, dir))) {
      total.files += 1;
      total.bytes += file.info.size;
    }
  return total;
}

/**
 * Removes memo entries last used before `horizon` (Unix ms; a file's last use is its access or
 * modification time, whichever is later, plus a day for `relatime`), entries in a retired format,
 * temps whose writer is gone, and package-trees/ records that may go (`isOrphaned`). Nothing a
 * running build needs to stay correct: it finds an entry whole or not at all.
 */
export async function pruneMemo(
  cacheDir: string,
  horizon: number,
  isOrphaned: (record: string) => Promise<boolean>,
): Promise<MemoBytes> {
  const removed: MemoBytes = { files: 0, bytes: 0 };
  const remove = async (file: MemoFile) => {
    await rm(file.path, { force: true });
    removed.files += 1;
    removed.bytes += file.info.size;
  };
  for (const store of MEMO_STORES)
    for (const file of await filesIn(join(cacheDir, store.dir))) {
      const lastUse = lastUseOf(file.info);
      const pid = tempWriterPid(file.name);
      if (
        pid !== undefined
          ? !processRuns(pid)
          : lastUse < horizon ||
            (store.retired ?? []).some((end) => file.name.endsWith(end))
      )
        await remove(file);
    }
  for (const file of await filesIn(join(cacheDir, PACKAGE_TREES_DIR))) {
    const pid = tempWriterPid(file.name);
    if (pid !== undefined ? !processRuns(pid) : await isOrphaned(file.path))
      await remove(file);
  }
  return removed;
}

/**
 * Removes what writers left in `<cache>/tmp/` (a build's or pull's directory, a store's temp
 * file) unless the process named in it still runs.
 */
export async function removeDeadTemps(tmpDir: string): Promise<void> {
  const names = await namesIfPresent(tmpDir);
  for (const name of names) {
    const pid =
      tempWriterPid(name) ?? /^[a-z]+-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
    if (pid !== undefined && processRuns(Number(pid))) continue;
    await rm(join(tmpDir, name), { recursive: true, force: true });
  }
}

interface MemoFile {
  name: string;
  path: string;
  info: Stats;
}

/** The regular files of `dir` (none when it is missing); a file removed meanwhile is skipped. */
async function filesIn(dir: string): Promise<MemoFile[]> {
  const names = await namesIfPresent(dir);
  const files = await Promise.all(
    names.map(async (name): Promise<MemoFile | null> => {
      const path = join(dir, name);
      try {
        const info = await lstat(path);
        return info.isFile() ? { name, path, info } : null;
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
    }),
  );
  return files.filter((f): f is MemoFile => f !== null);
}
