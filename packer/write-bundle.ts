// Writes a deterministic `.tar.zst` bundle from a list of entries: sorted, fixed mtime and
// owners, normalised modes, streamed through zstd and sha256 into a file named by its digest.

import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { readFile, rename, rm, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import { once } from "node:events";
import { availableParallelism } from "node:os";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Header, Pack, ReadEntry } from "tar";
import { CompressStream } from "zstd-napi";
import {
  InputError,
  isSafeRelativePath,
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
  entries: BundleEntry[];
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
 * and executables, 0644 for other files, 0777 for symlinks. Memory is bounded by stream buffers
 * and a fixed read-ahead budget, not by the bundle's size; on failure nothing is left in `outDir`.
 * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID for an unsafe, duplicated or conflicting entry
 *   path, or a source that changes size while it is packed; file-system errors (ENOENT, EACCES)
 *   as they are; the signal's reason on abort
 */
export async function writeBundle(
  options: WriteBundleOptions,
): Promise<WrittenBundle> {
  const entries = normaliseEntries(options.entries);
  // One stat per source file, all at once: its size for the header, and its execute bit when
  // the entry leaves `executable` open. `stat`, not `lstat`: the bytes are read through links.
  const stats = await Promise.all(
    entries.map(async (e) =>
      e.type !== "file"
        ? { size: 0, executable: false }
        : e.data
          ? { size: e.data.length, executable: e.executable === true }
          : await stat(e.source as string).then((info) => ({
              size: info.size,
              executable: e.executable ?? (info.mode & 0o111) !== 0,
            })),
    ),
  );
  const sizes = stats.map((s) => s.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  const temp = join(
    options.outDir,
    `.bundle-${process.pid}-${randomBytes(6).toString("hex")}.tmp`,
  );
  const hash = createHash("sha256");
  let size = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  // node-tar counts every queued entry as a running job; past `jobs` it stops advancing its
  // queue. Our own budget (below) bounds what is queued instead.
  // Not `portable`: it leaves directory mtimes and uid/gid fields blank and forces symlinks to
  // 0755. Our entries are synthetic headers carrying no host metadata, so every field is set
  // explicitly below and node-tar copies them as they are (no umask is applied when packing
  // from headers; only the file-system WriteEntry reads modes from disk).
  const pack = new Pack({
    jobs: Number.POSITIVE_INFINITY,
    mtime: BUNDLE_MTIME,
    noDirRecurse: true,
    strict: true,
  });
  const compressor = new CompressStream({
    compressionLevel: options.level ?? 3,
    nbWorkers: Math.max(1, options.threads ?? availableParallelism()),
  });
  // One signal for the pipeline and every wait of the feeding loop: the caller's abort, a failed
  // source (the loop throws) and a failed pipeline (disk full) each stop all of them, so that no
  // side waits forever for the other.
  const stop = new AbortController();
  const signal =
    options.signal === undefined
      ? stop.signal
      : AbortSignal.any([options.signal, stop.signal]);
  const written = pipeline(
    pack,
    compressor,
    hasher,
    createWriteStream(temp, { flags: "wx" }),
    { signal },
  );
  written.catch((error: unknown) => stop.abort(error));
  try {
    let bytes = 0;
    let lastReport = 0;
    options.onEvent?.({
      type: "build:progress",
      phase: "pack",
      bytes: 0,
      total,
      files: 0,
    });
    const readAhead = new ReadAhead(entries, sizes);
    const queue = new PackQueue();
    for (const [i, entry] of entries.entries()) {
      signal.throwIfAborted();
      const entrySize = sizes[i] ?? 0;
      readAhead.fill(i);
      const header = new Header({
        // Directories end in "/", as tar tools write and list them.
        path: entry.type === "directory" ? `${entry.path}/` : entry.path,
        type:
          entry.type === "file"
            ? "File"
            : entry.type === "directory"
              ? "Directory"
              : "SymbolicLink",
        mode:
          entry.type === "directory"
            ? 0o755
            : entry.type === "symlink"
              ? 0o777
              : stats[i]?.executable
                ? 0o755
                : 0o644,
        size: entrySize,
        mtime: BUNDLE_MTIME,
        uid: 0,
        gid: 0,
        uname: "",
        gname: "",
        linkpath: entry.type === "symlink" ? entry.linkTarget : undefined,
      });
      const readEntry = new ReadEntry(header);
      await queue.admit(readEntry, entrySize, signal);
      pack.add(readEntry);
      if (entry.type === "file") {
        const prefetched = readAhead.take(i);
        if (entry.data) readEntry.end(Buffer.from(entry.data));
        else if (prefetched)
          readEntry.end(
            checkSize(await prefetched, entrySize, entry.source as string),
          );
        else
          await copyExactly(
            entry.source as string,
            entrySize,
            readEntry,
            signal,
          );
      } else {
        readEntry.end();
      }
      bytes += entrySize;
      if (
        options.onEvent &&
        (bytes - lastReport > 8 * 1024 * 1024 || i === entries.length - 1)
      ) {
        lastReport = bytes;
        options.onEvent({
          type: "build:progress",
          phase: "pack",
          bytes,
          total,
          files: i + 1,
        });
      }
    }
    pack.end();
    await written;
    const digest: Digest = `sha256:${hash.digest("hex")}`;
    const path = join(
      options.outDir,
      `${digest.slice("sha256:".length)}.tar.zst`,
    );
    await rename(temp, path);
    return { digest, path, size, entries: entries.length };
  } catch (error) {
    stop.abort(error);
    await written.catch(() => {});
    throw error;
  } finally {
    await rm(temp, { force: true });
  }
}

/** Files up to this size are read whole, ahead of the packer; bigger ones are streamed. */
const SMALL_FILE = 4 * 1024 * 1024;
/** At most this many bytes of small files are read ahead. */
const READ_AHEAD_BYTES = 64 * 1024 * 1024;

/**
 * Reads the next small files while earlier entries are packed: per-file I/O latency, not
 * compression, dominates bundles of many small files (node_modules, site-packages).
 */
class ReadAhead {
  readonly #entries: BundleEntry[];
  readonly #sizes: number[];
  readonly #pending = new Map<number, Promise<Buffer>>();
  #next = 0;
  #bytes = 0;

  constructor(entries: BundleEntry[], sizes: number[]) {
    this.#entries = entries;
    this.#sizes = sizes;
  }

  /** Starts reads from entry `from` on until the byte budget is used. */
  fill(from: number): void {
    this.#next = Math.max(this.#next, from);
    while (
      this.#next < this.#entries.length &&
      this.#bytes < READ_AHEAD_BYTES
    ) {
      const i = this.#next++;
      const entry = this.#entries[i];
      const size = this.#sizes[i] ?? 0;
      if (
        entry?.type !== "file" ||
        entry.data ||
        entry.source === undefined ||
        size > SMALL_FILE
      )
        continue;
      const read = readFile(entry.source);
      // Failures surface when the entry is taken; until then keep the rejection handled.
      read.catch(() => {});
      this.#pending.set(i, read);
      this.#bytes += size;
    }
  }

  /** The read started for entry `i`, if any. */
  take(i: number): Promise<Buffer> | undefined {
    const read = this.#pending.get(i);
    if (read !== undefined) {
      this.#pending.delete(i);
      this.#bytes -= this.#sizes[i] ?? 0;
    }
    return read;
  }
}

/** Bounds the bytes handed to the packer but not yet written out. */
class PackQueue {
  readonly #waiting: Array<{ done: Promise<void>; size: number }> = [];
  #bytes = 0;

  /** Waits until there is room for an entry of `size` bytes, then counts it until it ends. */
  async admit(
    entry: ReadEntry,
    size: number,
    signal: AbortSignal,
  ): Promise<void> {
    while (this.#bytes + size > READ_AHEAD_BYTES && this.#waiting.length > 0) {
      const oldest = this.#waiting.shift() as {
        done: Promise<void>;
        size: number;
      };
      await oldest.done;
      this.#bytes -= oldest.size;
    }
    this.#bytes += size;
    const done = once(entry, "end", { signal }).then(() => {});
    // Awaited later or never (after an abort); the rejection is handled either way.
    done.catch(() => {});
    this.#waiting.push({ done, size });
  }
}

function checkSize(data: Buffer, expected: number, source: string): Buffer {
  if (data.length !== expected) {
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `${source} changed size while it was being packed`,
      {
        hint: "Build again once nothing is writing to the app or its packages.",
      },
    );
  }
  return data;
}

/** Streams a file into a tar entry, failing if it no longer has the size its header promised. */
async function copyExactly(
  source: string,
  expected: number,
  into: ReadEntry,
  signal: AbortSignal | undefined,
): Promise<void> {
  let seen = 0;
  // node-tar's entries are Minipass streams, fed by hand with their own backpressure.
  for await (const chunk of createReadStream(source, { signal })) {
    const bytes = chunk as Buffer;
    seen += bytes.length;
    if (seen > expected) break;
    if (!into.write(bytes)) await once(into, "drain", { signal });
  }
  if (seen !== expected) {
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `${source} changed size while it was being packed`,
      {
        hint: "Build again once nothing is writing to the app or its packages.",
      },
    );
  }
  into.end();
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
    byPath.set(path, { ...entry, path });
  }
  for (const path of [...byPath.keys()]) {
    for (let dir = posix.dirname(path); dir !== "."; dir = posix.dirname(dir)) {
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
