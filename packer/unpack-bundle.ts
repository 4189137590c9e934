// Unpacks a bundle safely: the digest is checked before anything is written, every entry is
// checked to stay inside the target, and the target appears only once it is complete.

import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, rename, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadEntry } from "tar";
import {
  IntegrityError,
  hashFile,
  normaliseRelativePath,
  pathExists,
  type Digest,
  type OnEvent,
  writeFailure,
} from "../src/core/light.js";
import { EntryGuard } from "./entry-guard.js";
import { removeTree } from "./layers/read-only-tree.js";
import type { ZstdDecoder } from "./decompress-zstd.js";
import { openWriterThread, type WriterThread } from "./unpack-thread.js";
import {
  openEntryWriter,
  writesInline,
  type EntryWriter,
} from "./unpack-writer.js";

/** Options of {@link unpackBundle}. */
export interface UnpackBundleOptions {
  /** The `.tar.zst` bundle to read. */
  file: string;
  /** Directory to create; it must not exist yet. Its parent is created when missing. */
  dest: string;
  /** When given, the file's sha256 must match before anything is written. */
  expectedDigest?: Digest | undefined;
  /** Receives `build:progress` events with `phase: "unpack"` (compressed bytes read). */
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
  /** Leave `dest` read-only (a shared layer): files made so, directories sealed before it appears. */
  readOnly?: boolean | undefined;
  /**
   * The writing thread to use (shared by the layers of one bundle, unpacked side by side); by
   * default one of its own, started only for a large archive and stopped before returning.
   */
  thread?: WriterThread | undefined;
}

/**
 * File-system failures that come from the machine (limits, I/O), passed through as they are;
 * space and quota become ENVPACK_INPUT_NO_SPACE, permissions ENVPACK_INPUT_OUTPUT_UNWRITABLE. Others (ENOTEMPTY,
 * EEXIST, ENOTDIR…) can only come from conflicting entries, since the archive is unpacked into
 * a fresh directory: the archive is corrupt.
 */
const ENVIRONMENT_ERRORS = new Set([
  "ENOSPC",
  "EDQUOT",
  "EACCES",
  "EPERM",
  "EROFS",
  "EMFILE",
  "ENFILE",
  "EIO",
  "ENOMEM",
]);

/** A pax record naming GNU sparse data (formats 0.0, 0.1 and 1.0 all use `GNU.sparse.*` keys). */
const GNU_SPARSE_RECORD = /(?:^|\n)\d+ GNU\.sparse\./;

/** Progress is reported at most once per this many compressed bytes. */
const PROGRESS_STEP = 8 * 1024 * 1024;

/**
 * Compressed bytes per read. Each read is a round trip through libuv's thread pool; at a read
 * stream's default 64 KB a 30 MB layer takes ~500 of them, and on a busy machine each waits for
 * both threads to be scheduled again. 1 MB is ~30, and still one decompressed buffer at a time.
 */
const READ_CHUNK = 1 << 20;

/**
 * Unpacks `file` into `dest` under the unpack contract (README "Unpack contract"; the sh runner
 * runtime/envpack-run obeys the same one, and test/packer/hostile-table.test.ts runs one table of
 * hostile bundles against both). Refuses — with IntegrityError ENVPACK_INTEGRITY_UNSAFE_ENTRY
 * whose `details.entry` names the entry — absolute paths, `..` components, symlinks whose target
 * leaves the bundle (resolved from the link's own directory, following the bundle's other
 * symlinks), hardlinks to anything but a regular file unpacked before them, entries written
 * through or replacing a symlink, devices, fifos, GNU sparse files (old `S` entries and pax
 * `GNU.sparse.*` records) and setuid/setgid bits. It stops at the first unsafe entry.
 * Entries are read and checked on this thread and written by a worker thread while the next
 * bytes are decompressed; decompression waits for the writer, so memory stays bounded (tens of
 * MB) however well the data compresses. Files are created exclusively, never through a link,
 * with the archive's mode (less the umask, without the sticky bit); mtimes are not restored.
 * Work happens in a temp directory `.<dest name>.<random>.tmp` beside `dest`, renamed into place
 * on success and removed on any failure: `dest` is either absent or complete.
 * @throws IntegrityError ENVPACK_INTEGRITY_DIGEST_MISMATCH (checked before anything is written),
 *   ENVPACK_INTEGRITY_UNSAFE_ENTRY, ENVPACK_INTEGRITY_CORRUPT_ARCHIVE (truncated or corrupt zstd
 *   or tar, or entries that conflict on disk); InputError ENVPACK_INPUT_NO_SPACE when the
 *   target's file system is full (ENOSPC, EDQUOT), ENVPACK_INPUT_OUTPUT_UNWRITABLE when it cannot
 *   be written (EACCES, EPERM, EROFS);
 *   other errors of the machine (EMFILE, EIO…) and a missing `file` as they are; the signal's
 *   reason on abort; a plain Error when `dest` already exists (the caller owns that directory).
 */
export async function unpackBundle(
  options: UnpackBundleOptions,
): Promise<{ entries: number }> {
  const name = basename(options.file);
  const total = (await stat(options.file)).size;
  const thread = options.thread ?? openWriterThread();
  // The writing thread's start-up (on its own core) overlaps the hashing below.
  if (!writesInline(total)) thread.start();
  try {
    return await unpackInto(options, name, total, thread);
  } finally {
    if (thread !== options.thread) await thread.close();
  }
}

async function unpackInto(
  options: UnpackBundleOptions,
  name: string,
  total: number,
  thread: WriterThread,
): Promise<{ entries: number }> {
  if (options.expectedDigest !== undefined) {
    const { digest } = await hashFile(options.file);
    if (digest !== options.expectedDigest) {
      throw new IntegrityError(
        "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
        `${name} hashes to ${digest}, expected ${options.expectedDigest}`,
        {
          hint: "The bundle was corrupted in transit or storage; fetch or build it again.",
          details: { file: options.file },
        },
      );
    }
  }
  if (await pathExists(options.dest)) {
    throw new Error(
      `unpackBundle: ${options.dest} already exists; unpack into a path that does not`,
    );
  }
  // A target that cannot be written is the machine's state, not a bug: a coded error.
  const writing = <T>(step: Promise<T>): Promise<T> =>
    step.catch((error: unknown) => {
      throw writeFailure(error, options.dest, "unpack target");
    });
  await writing(mkdir(dirname(options.dest), { recursive: true }));
  const temp = join(
    dirname(options.dest),
    `.${basename(options.dest)}.${randomBytes(6).toString("hex")}.tmp`,
  );
  const guard = new EntryGuard(temp);
  let violation: IntegrityError | undefined;
  const refuse = (entry: string, reason: string): IntegrityError =>
    new IntegrityError(
      "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      `${name}: unsafe entry ${JSON.stringify(entry)}: ${reason}`,
      {
        hint: "Do not use this bundle: it tries to write outside its directory or to create special files.",
        details: { file: options.file, entry, reason },
      },
    );
  let bytes = 0;
  let reported = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (options.onEvent && bytes - reported >= PROGRESS_STEP) {
        reported = bytes;
        options.onEvent({
          type: "build:progress",
          phase: "unpack",
          bytes,
          total,
          files: guard.entries,
        });
      }
      callback(null, chunk);
    },
  });
  options.onEvent?.({
    type: "build:progress",
    phase: "unpack",
    bytes: 0,
    total,
    files: 0,
  });
  let writer: EntryWriter | undefined;
  try {
    await writing(mkdir(temp));
    writer = openEntryWriter(temp, total, options.readOnly === true, thread);
    // Loaded on the first unpack: importing envpack loads no native addon.
    const { openZstdDecoder } = await import("./decompress-zstd.js");
    const sink = await extractInto(
      openZstdDecoder(),
      writer,
      guard,
      (path, reason) => {
        violation = refuse(path, reason);
        return violation;
      },
    );
    try {
      await pipeline(
        createReadStream(options.file, { highWaterMark: READ_CHUNK }),
        counter,
        sink,
        { signal: options.signal },
      );
    } catch (error) {
      if (violation !== undefined) throw violation;
      if (options.signal?.aborted) throw options.signal.reason;
      const failure = error as NodeJS.ErrnoException;
      if (failure.code !== undefined && ENVIRONMENT_ERRORS.has(failure.code))
        throw writeFailure(error, options.dest, "unpack target");
      throw new IntegrityError(
        "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE",
        `${name} is corrupt or truncated: ${failure.message}`,
        {
          hint: "Fetch or build the bundle again.",
          cause: error,
          details: { file: options.file },
        },
      );
    }
    const escaping = guard.escapingLink();
    if (escaping !== undefined) throw refuse(escaping.path, escaping.reason);
    await writing(writer.seal());
    options.onEvent?.({
      type: "build:progress",
      phase: "unpack",
      bytes,
      total,
      files: guard.entries,
    });
    await writing(rename(temp, options.dest));
    return { entries: guard.entries };
  } finally {
    await writer?.close();
    await removeTree(temp); // sealed read-only when a rename failed after the seal
  }
}

/**
 * The last stage of the unpack pipeline: decompresses with `decoder` one output buffer at a
 * time, parses the tar stream (node-tar's Parser, strict: a bad checksum or a truncated archive
 * is an error), checks each entry with `guard` before anything of it is written, and hands what
 * passes to `writer`. The first unsafe entry stops the stream with the error `refuse` makes.
 * Finishes once the writer has written everything. node-tar is loaded here, on the first
 * unpack: importing envpack loads none of it.
 */
async function extractInto(
  decoder: ZstdDecoder,
  writer: EntryWriter,
  guard: EntryGuard,
  refuse: (path: string, reason: string) => Error,
): Promise<Writable> {
  const { Parser } = await import("tar");
  let failure: Error | undefined;
  const parser = new Parser({
    strict: true,
    filter: (path, entry) => {
      if (failure !== undefined) return false;
      const reason = guard.check(path, entry as ReadEntry);
      if (reason === undefined) return true;
      failure = refuse(path, reason);
      parser.abort(failure);
      return false;
    },
    onReadEntry: (entry) => {
      if (sparseHeader) {
        failure ??= refuse(entry.path, "GNU sparse entries are not allowed");
        parser.abort(failure);
        return;
      }
      const path = normaliseRelativePath(entry.path) as string;
      const mode = entry.mode ?? 0o644;
      switch (entry.type) {
        case "Directory":
          if (path !== ".") writer.dir(path, mode);
          break;
        case "SymbolicLink":
          writer.symlink(path, entry.linkpath ?? "");
          break;
        case "Link":
          writer.link(
            path,
            normaliseRelativePath(entry.linkpath ?? "") as string,
          );
          break;
        default:
          writer.file(path, mode);
          entry.on("data", (chunk: Buffer) => writer.write(chunk));
          entry.on("end", () => writer.end());
          return;
      }
      entry.resume();
    },
  });
  // Entries node-tar skips without asking the filter (GNU sparse `S` entries, unknown types,
  // oversized headers) would silently vanish from the tree: refuse them instead.
  parser.on("ignoredEntry", (entry: ReadEntry) => {
    if (failure !== undefined) return;
    failure = refuse(
      entry.path,
      entry.type === "SparseFile"
        ? "GNU sparse entries are not allowed"
        : `${entry.type} entries are not allowed`,
    );
    parser.abort(failure);
  });
  // Pax sparse files arrive as plain files whose extended header carries GNU.sparse.* records;
  // node-tar drops those keys, so the raw header is read here, before its entry is written.
  let sparseHeader = false;
  parser.on("meta", (text: string) => {
    if (GNU_SPARSE_RECORD.test(text)) sparseHeader = true;
  });
  parser.on("error", (error: Error) => (failure ??= error));
  // A refused entry, a parse error or a write error ends the stream at the next chunk.
  const failed = () => failure ?? writer.error;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      let input = chunk;
      // The decoder's two output buffers are safe to reuse: node-tar's Parser handles a chunk
      // before write() returns, keeping at most a view of its last partial block, which it
      // copies (Buffer.concat) on the next write; an entry's data reaches `writer` at once
      // (each entry flows: data listener or resume()), and the writer copies or writes it.
      const pump = (): void => {
        for (;;) {
          if (failed()) return callback(failed());
          let drained: boolean;
          try {
            const step = decoder.step(input);
            input = step.rest;
            drained = step.drained;
            if (step.output.length > 0) parser.write(step.output);
          } catch (error) {
            return callback(failure ?? (error as Error));
          }
          if (failed()) return callback(failed());
          if (drained) return writer.whenRoom(() => callback(failed()));
          if (!writer.hasRoom()) return writer.whenRoom(pump);
        }
      };
      pump();
    },
    final(callback) {
      try {
        decoder.end();
      } catch (error) {
        return callback(error as Error);
      }
      const parsed = new Promise<void>((resolve) => {
        parser.on("end", resolve);
        parser.on("error", () => resolve());
        parser.end();
      });
      Promise.race([parsed, writer.failed])
        .then(() => {
          if (failed()) throw failed();
          return writer.finish();
        })
        .then(
          () => callback(),
          (error: Error) => callback(failure ?? error),
        );
    },
  });
}
