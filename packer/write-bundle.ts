// Writes a deterministic `.tar.zst` bundle from a list of entries: sorted, fixed mtime and
// owners, normalised modes, streamed through zstd and sha256 into a file named by its digest.

import { join, posix } from "node:path";
import { availableParallelism } from "node:os";
import {
  InputError,
  commitAtomic,
  removeIfPresent,
  isSafeRelativePath,
  nativeStatFile,
  tempPathFor,
  type Digest,
  type OnEvent,
} from "../src/core/light.js";
import type { BundleEntry } from "./bundle-entry.js";
import {
  startPackInThread,
  startPackWorker,
  type PackJob,
  type PackThread,
} from "./pack-host.js";

export type { BundleEntry } from "./bundle-entry.js";

/** Options of {@link writeBundle}. */
export interface WriteBundleOptions {
  /**
   * Entries packed first, sorted among themselves, before the sorted rest: what is known before
   * the rest is planned (a Node bundle's node binary) is compressed while the rest is planned.
   * Part of what decides the bytes: the same entries split otherwise give another bundle.
   */
  leading?: BundleEntry[] | Promise<BundleEntry[]> | undefined;
  /**
   * The other entries, or a promise of them: the packing worker boots, and packs the leading
   * entries, while it settles.
   */
  entries: BundleEntry[] | Promise<BundleEntry[]>;
  /** Directory the bundle is written into, as `<sha256 hex>.tar.zst`. */
  outDir: string;
  /** zstd level, default 3. */
  level?: number | undefined;
  /**
   * zstd worker threads, default `os.availableParallelism()`. Raised to at least 1: zstd's
   * multi-threaded format gives the same bytes for any worker count ≥ 1, but not for 0.
   */
  threads?: number | undefined;
  /** Receives `build:progress` events with `phase: "pack"` (uncompressed bytes of file data). */
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/** What {@link writeBundle} wrote. */
export interface WrittenBundle {
  digest: Digest;
  path: string;
  size: number;
  entries: number;
}

/**
 * Every entry's mtime, directories included: 2000-01-01T00:00:00Z. Fixed so bytes do not depend
 * on when or where a bundle was built; not the epoch, because some tools treat a zero mtime as
 * "unset" (and zip-based formats cannot store dates before 1980).
 */
export const BUNDLE_MTIME = new Date(Date.UTC(2000, 0, 1));

/** Options of {@link openBundleWriter}: {@link WriteBundleOptions} without the entries. */
export type BundleWriterOptions = Omit<
  WriteBundleOptions,
  "leading" | "entries"
> & {
  /**
   * Pack on the calling thread instead of a worker: no worker to boot (about 0.1 s), but the
   * thread is busy while each batch packs. For small bundles (an app layer). Same bytes.
   */
  inThread?: boolean | undefined;
  /**
   * Pack on this worker (see startPackThread), after the jobs other writers posted to it, instead
   * of booting a worker of its own. Same bytes.
   */
  thread?: PackThread | undefined;
};

/** A bundle being written: batches go in as they are known, {@link BundleWriter.finish} names it. */
export interface BundleWriter {
  /**
   * Hands over a batch: packed after every earlier batch, sorted among itself, with the parent
   * directories no earlier batch packed. Which batches the entries came in is part of the bytes.
   * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID for an unsafe path, or one that duplicates
   *   or conflicts with an entry of this or an earlier batch (the writer stays usable for abort)
   */
  add(entries: BundleEntry[]): void;
  /**
   * Ends the bundle and renames it to `<sha256 hex>.tar.zst` in `outDir`. On failure nothing of
   * it is left in `outDir`.
   * @throws the packing failure (file-system errors as they are; InputError for a source that
   *   changed size), the signal's reason on abort
   */
  finish(): Promise<WrittenBundle>;
  /**
   * Stops packing and resolves once nothing of the bundle is left but what a `finish` already
   * under way committed (it settles first); harmless after `finish`.
   */
  abort(): Promise<void>;
}

/**
 * Opens a bundle: the packing worker boots at once and packs each batch as it is added, so what
 * is known early (a Node bundle's node binary) is compressed while the rest is planned. Same
 * batches (entries by path, type, bytes, executable bit and link target), same envpack and zstd
 * versions → same bytes, whatever the sources' mtimes, owners, other mode bits, paths, the
 * caller's umask and the thread count. Headers are ustar (a pax record only for names ustar
 * cannot hold), uid/gid 0, empty uname/gname, no atime/ctime; modes 0755 for directories and
 * executables, 0644 for other files, 0777 for symlinks. Memory is bounded by a 1 MB stage and
 * zstd's job buffers (4 MB jobs), not by the bundle's size.
 * @throws the signal's reason when it is already aborted
 */
export function openBundleWriter(options: BundleWriterOptions): BundleWriter {
  options.signal?.throwIfAborted();
  const temp = tempPathFor(join(options.outDir, "unnamed"), options.outDir);
  const worker = options.inThread
    ? startPackInThread(options)
    : (options.thread?.host(options) ?? startPackWorker(options));
  // Posted at once: the packer makes the directory (a failure to is the bundle's, reported by
  // finish), so a batch reaches a worker thread while this thread goes on planning.
  const post = (job: PackJob): void => worker.post(job);
  post({
    type: "start",
    temp,
    level: options.level ?? 3,
    threads: Math.max(1, options.threads ?? availableParallelism()),
    mtimeMs: BUNDLE_MTIME.getTime(),
    nativeAddon: nativeStatFile(),
  });
  const packed = new Map<string, BundleEntry>();
  let state: "open" | "finishing" | "closed" = "open";
  let finishing: Promise<WrittenBundle> | undefined;
  const close = async (): Promise<void> => {
    state = "closed";
    // The worker has closed the temp before it is renamed or removed.
    await worker.stop();
    await removeIfPresent(temp);
  };
  return {
    add(entries) {
      if (state !== "open") throw new Error("the bundle writer is closed");
      const batch = normaliseBatch(packed, entries);
      for (const entry of batch) packed.set(entry.path, entry);
      post({ type: "entries", entries: batch, last: false });
    },
    finish() {
      if (state !== "open")
        return Promise.reject(new Error("the bundle writer is closed"));
      state = "finishing";
      post({ type: "entries", entries: [], last: true });
      finishing = (async () => {
        try {
          const done = await worker.done;
          const path = join(
            options.outDir,
            `${done.digest.slice("sha256:".length)}.tar.zst`,
          );
          await commitAtomic(temp, path);
          return { ...done, path, entries: packed.size };
        } finally {
          await close();
        }
      })();
      return finishing;
    },
    async abort() {
      await close();
      // A finish under way has settled too (its bundle, if it got that far, stands): nothing of
      // the writer touches `outDir` once abort resolves.
      await Promise.allSettled([finishing]);
    },
  };
}

/**
 * Writes a bundle from its entries at once (see {@link openBundleWriter} for what decides the
 * bytes): `leading` as one batch, then the rest. On failure nothing is left in `outDir`.
 * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID for an unsafe, duplicated or conflicting entry
 *   path, or a source that changes size while it is packed; file-system errors (ENOENT, EACCES)
 *   as they are; the signal's reason on abort
 */
export async function writeBundle(
  options: WriteBundleOptions,
): Promise<WrittenBundle> {
  const writer = openBundleWriter(options);
  // Settled into values at once: the rest may fail while the leading entries are awaited.
  const rest = Promise.resolve(options.entries).then(
    (entries) => ({ entries }),
    (error: unknown) => ({ error }),
  );
  try {
    writer.add(
      Array.isArray(options.leading)
        ? options.leading
        : await (options.leading ?? []),
    );
    const settled = await rest;
    if ("error" in settled) throw settled.error;
    options.signal?.throwIfAborted();
    writer.add(settled.entries);
    return await writer.finish();
  } finally {
    await writer.abort();
  }
}

/**
 * Validates a batch's paths against itself and the entries already `packed`, adds the parent
 * directories neither holds and sorts it by path (code-unit order).
 */
function normaliseBatch(
  packed: ReadonlyMap<string, BundleEntry>,
  input: BundleEntry[],
): BundleEntry[] {
  const byPath = new Map<string, BundleEntry>();
  for (const entry of input) {
    const path = entry.path.endsWith("/")
      ? entry.path.replace(/\/+$/, "")
      : entry.path;
    if (!isSafeRelativePath(path)) {
      throw new InputError(
        "ENVPACK_INPUT_MANIFEST_INVALID",
        `unsafe bundle path: ${JSON.stringify(entry.path)}`,
        {
          hint: "Bundle paths are relative and stay inside the bundle.",
        },
      );
    }
    const existing = byPath.get(path) ?? packed.get(path);
    if (existing !== undefined) {
      if (existing.type === "directory" && entry.type === "directory") continue;
      throw new InputError(
        "ENVPACK_INPUT_MANIFEST_INVALID",
        `two bundle entries at ${path}`,
        {
          hint: "An app file and a package (or two packages) map to the same place.",
        },
      );
    }
    byPath.set(path, path === entry.path ? entry : { ...entry, path });
  }
  // A directory once climbed through has had all its ancestors added: the climb stops there.
  // Entries come mostly grouped by directory: a path in the directory the previous one was in
  // needs no look-up at all.
  const climbed = new Set<string>();
  let previous = ".";
  for (const path of [...byPath.keys()]) {
    const parent = posix.dirname(path);
    if (parent === previous) continue;
    previous = parent;
    for (
      let dir = parent;
      dir !== "." && !climbed.has(dir);
      dir = posix.dirname(dir)
    ) {
      climbed.add(dir);
      const existing = byPath.get(dir) ?? packed.get(dir);
      if (existing === undefined)
        byPath.set(dir, { path: dir, type: "directory" });
      else if (existing.type !== "directory") {
        throw new InputError(
          "ENVPACK_INPUT_MANIFEST_INVALID",
          `${dir} is both a ${existing.type} and a directory`,
          {
            hint: "Two entries of the bundle conflict.",
          },
        );
      }
    }
  }
  // The default sort compares strings by code unit, with no call into JavaScript per comparison.
  return [...byPath.keys()]
    .sort()
    .map((path) => byPath.get(path) as BundleEntry);
}
