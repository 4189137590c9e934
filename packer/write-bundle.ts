// Writes a deterministic `.tar.zst` bundle from a list of entries: sorted, fixed mtime and
// owners, normalised modes, streamed through zstd and sha256 into a file named by its digest.

import { join, posix } from "node:path";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  InputError,
  envpackCodeFile,
  isSafeRelativePath,
  writeAtomicNamed,
  type Digest,
  type OnEvent,
} from "../src/core/index.js";

/** One thing to put in a bundle. */
export interface BundleEntry {
  /** POSIX path relative to the bundle root. */
  path: string;
  type: "file" | "directory" | "symlink";
  /** Files: the absolute file to read the bytes from. */
  source?: string | undefined;
  /** Files: the bytes, when they come from memory (launchers, metadata). */
  data?: Uint8Array | undefined;
  /** Files: written 0755 instead of 0644; left undefined, the source file's execute bit decides. */
  executable?: boolean | undefined;
  /** Symlinks: the link's target, as stored. */
  linkTarget?: string | undefined;
}

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

/**
 * Writes the bundle. Same entries (by path, type, bytes, executable bit and link target), same
 * envpack and zstd versions → same bytes, whatever the sources' mtimes, owners, other mode bits,
 * paths, the caller's umask and the thread count. Headers are ustar (a pax record only for names
 * ustar cannot hold), uid/gid 0, empty uname/gname, no atime/ctime; modes 0755 for directories
 * and executables, 0644 for other files, 0777 for symlinks. Packing runs in a worker thread; memory is
 * bounded by a 1 MB stage and zstd's job buffers (4 MB jobs), not by the bundle's size; on
 * failure nothing is left in `outDir`.
 * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID for an unsafe, duplicated or conflicting entry
 *   path, or a source that changes size while it is packed; file-system errors (ENOENT, EACCES)
 *   as they are; the signal's reason on abort
 */
export async function writeBundle(
  options: WriteBundleOptions,
): Promise<WrittenBundle> {
  options.signal?.throwIfAborted();
  // Named by its digest, known once the last byte is packed.
  return writeAtomicNamed(options.outDir, async (temp) => {
    const worker = startPackWorker(options, {
      type: "start",
      temp,
      level: options.level ?? 3,
      threads: Math.max(1, options.threads ?? availableParallelism()),
      mtimeMs: BUNDLE_MTIME.getTime(),
    });
    try {
      // Handed over before anything is awaited when known: the caller may keep the event loop busy.
      const leading = normaliseEntries(
        Array.isArray(options.leading)
          ? options.leading
          : await (options.leading ?? []),
      );
      worker.add(leading, false);
      // Checked as one bundle (duplicates, conflicts); only what the leading part lacks follows.
      const sent = new Set(leading.map((e) => e.path));
      const all = normaliseEntries([...leading, ...(await options.entries)]);
      options.signal?.throwIfAborted();
      worker.add(
        all.filter((e) => !sent.has(e.path)),
        true,
      );
      const packed = await worker.done;
      const path = join(
        options.outDir,
        `${packed.digest.slice("sha256:".length)}.tar.zst`,
      );
      return { ...packed, path, entries: all.length };
    } finally {
      // The worker has closed the temp before it is renamed or removed.
      await worker.stop();
    }
  });
}

/** What packer/pack-worker.mjs is given (its JSDoc `Start` and `Batch`). */
type PackJob =
  | {
      type: "start";
      temp: string;
      level: number;
      threads: number;
      mtimeMs: number;
    }
  | { type: "entries"; entries: BundleEntry[]; last: boolean };

/** What packer/pack-worker.mjs posts. */
type PackMessage =
  | { type: "progress"; bytes: number; total: number; files: number }
  | { type: "done"; digest: Digest; size: number }
  | {
      type: "error";
      error: {
        changed: boolean;
        name: string;
        message: string;
        stack?: string;
        code?: string;
        errno?: number;
        syscall?: string;
        path?: string;
      };
    };

/**
 * Boots the packing worker (see pack-worker.mjs) at once and hands it `start`; `add` hands it a
 * batch of entries; `done` settles once the last batch is packed (or the worker failed, whenever
 * that was), and progress is relayed meanwhile. An abort
 * terminates the worker; `stop` terminates it if it is still running and resolves once it is
 * gone, so the temp file is closed before the caller removes it.
 */
function startPackWorker(
  options: WriteBundleOptions,
  start: Extract<PackJob, { type: "start" }>,
): {
  add(entries: BundleEntry[], last: boolean): void;
  done: Promise<{ digest: Digest; size: number }>;
  stop(): Promise<void>;
} {
  const worker = new Worker(envpackCodeFile("packer/pack-worker.mjs"));
  const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
  // Recorded from the start: the worker can fail while the entries are still being planned.
  let failure: unknown;
  worker.on("error", (error) => (failure ??= error));
  const onAbort = (): void => void worker.terminate();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const done = new Promise<{ digest: Digest; size: number }>(
    (resolve, reject) => {
      worker.on("message", (message: PackMessage) => {
        if (message.type === "progress") {
          const { bytes, total, files } = message;
          options.onEvent?.({
            type: "build:progress",
            phase: "pack",
            bytes,
            total,
            files,
          });
        } else if (message.type === "done") {
          resolve({ digest: message.digest, size: message.size });
        } else {
          failure ??= packError(message.error);
          void worker.terminate();
        }
      });
      void exited.then((code) =>
        reject(
          options.signal?.aborted
            ? options.signal.reason
            : (failure ??
                new Error(`the packing worker exited with code ${code}`)),
        ),
      );
    },
  );
  // Nobody awaits it until the last batch is handed over; the caller sees the rejection then.
  done.catch(() => {});
  worker.postMessage(start);
  return {
    add: (entries, last) =>
      worker.postMessage({ type: "entries", entries, last } satisfies PackJob),
    done,
    stop: async () => {
      options.signal?.removeEventListener("abort", onAbort);
      await worker.terminate();
      await exited;
    },
  };
}

/** Turns the worker's error report back into the error writeBundle documents. */
function packError(
  report: Extract<PackMessage, { type: "error" }>["error"],
): Error {
  if (report.changed) {
    return new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `${report.message} changed size while it was being packed`,
      {
        hint: "Build again once nothing is writing to the app or its packages.",
      },
    );
  }
  // File-system errors keep their code, syscall and path, as if thrown here.
  const error = Object.assign(new Error(report.message), {
    code: report.code,
    errno: report.errno,
    syscall: report.syscall,
    path: report.path,
  });
  error.name = report.name;
  if (report.stack !== undefined) error.stack = report.stack;
  return error;
}

/** Validates paths, adds missing parent directories and sorts by path (code-unit order). */
function normaliseEntries(input: BundleEntry[]): BundleEntry[] {
  const byPath = new Map<string, BundleEntry>();
  for (const entry of input) {
    const path = entry.path.replace(/\/+$/, "");
    if (!isSafeRelativePath(path)) {
      throw new InputError(
        "ENVPACK_INPUT_MANIFEST_INVALID",
        `unsafe bundle path: ${JSON.stringify(entry.path)}`,
        {
          hint: "Bundle paths are relative and stay inside the bundle.",
        },
      );
    }
    const existing = byPath.get(path);
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
  const climbed = new Set<string>();
  for (const path of [...byPath.keys()]) {
    for (
      let dir = posix.dirname(path);
      dir !== "." && !climbed.has(dir);
      dir = posix.dirname(dir)
    ) {
      climbed.add(dir);
      const existing = byPath.get(dir);
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
  return [...byPath.values()].sort((a, b) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
  );
}
