// Writes a deterministic `.tar.zst` bundle from a list of entries: sorted, fixed mtime and
// owners, normalised modes, streamed through zstd and sha256 into a file named by its digest.

import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, rename, rm } from "node:fs/promises";
import { join, posix } from "node:path";
import { once } from "node:events";
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
  /** Files: written 0755 instead of 0644. */
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
  /** zstd worker threads, default 2; at least 1 so that the bytes do not depend on it. */
  threads?: number | undefined;
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
 * Every entry's mtime: 2000-01-01T00:00:00Z. Fixed so bytes do not depend on when or where a
 * bundle was built; not the epoch, because some tools treat a zero mtime as "unknown".
 */
export const BUNDLE_MTIME = new Date(Date.UTC(2000, 0, 1));

/**
 * Writes the bundle. Same entries (by path, type, bytes, executable bit and link target), same
 * envpack and zstd versions → same bytes, whatever the sources' mtimes, owners, modes or paths,
 * and whatever the thread count. Nothing is held in memory beyond stream buffers; on failure no
 * file is left in `outDir`.
 * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID for an unsafe or duplicated entry path
 */
export async function writeBundle(
  options: WriteBundleOptions,
): Promise<WrittenBundle> {
  const entries = normaliseEntries(options.entries);
  const sizes = await Promise.all(
    entries.map(async (e) =>
      e.type !== "file"
        ? 0
        : e.data
          ? e.data.length
          : (await lstat(e.source as string)).size,
    ),
  );
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
  const pack = new Pack({
    portable: true,
    mtime: BUNDLE_MTIME,
    noDirRecurse: true,
    strict: true,
  });
  const compressor = new CompressStream({
    compressionLevel: options.level ?? 3,
    nbWorkers: Math.max(1, options.threads ?? 2),
  });
  const written = pipeline(
    pack,
    compressor,
    hasher,
    createWriteStream(temp, { flags: "wx" }),
    {
      signal: options.signal,
    },
  );
  // Keep the rejection handled while entries are still being fed.
  written.catch(() => {});
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
    for (const [i, entry] of entries.entries()) {
      options.signal?.throwIfAborted();
      const entrySize = sizes[i] ?? 0;
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
              : entry.executable
                ? 0o755
                : 0o644,
        size: entrySize,
        mtime: BUNDLE_MTIME,
        uid: 0,
        gid: 0,
        linkpath: entry.type === "symlink" ? entry.linkTarget : undefined,
      });
      const readEntry = new ReadEntry(header);
      pack.add(readEntry);
      if (entry.type === "file") {
        if (entry.data) readEntry.end(Buffer.from(entry.data));
        else
          await copyExactly(
            entry.source as string,
            entrySize,
            readEntry,
            options.signal,
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
    pack.destroy();
    await written.catch(() => {});
    throw error;
  } finally {
    await rm(temp, { force: true });
  }
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
