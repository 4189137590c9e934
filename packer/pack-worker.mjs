// @ts-check
// The packing loop of writeBundle, run in a worker thread: stat, read, tar framing (node-tar's
// encoding, through tar-header.mjs), zstd (zstd-napi's streaming context, with its own compression threads),
// sha256 and the file write. Synchronous on purpose: per-entry promise and stream machinery cost
// more than the bytes for bundles of many small files, and in a worker it blocks nobody. Files are
// read straight into the stage buffer the compressor consumes, so each byte is copied once.

import { createHash } from "node:crypto";
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { parentPort } from "node:worker_threads";
import zstd from "zstd-napi/binding.js";
import { headerEncoder, isOneBlock } from "./tar-header.mjs";
import {
  CHANGED,
  OMIT,
  settlePyc,
  nativeAddon,
  useNativeAddon,
} from "./conda/hash-based-pyc.mjs";

/**
 * @typedef {{ path: string, type: "file" | "directory" | "symlink", source?: string,
 *   data?: Uint8Array, executable?: boolean, linkTarget?: string,
 *   pyc?: { source: string, rewritten?: boolean } }} Entry
 * @typedef {{ type: "start", temp: string, level: number, threads: number,
 *   mtimeMs: number, nativeAddon: string | null }} Start
 * @typedef {{ type: "entries", entries: Entry[], last: boolean }} Batch
 * @typedef {{ type: "drop" }} Drop
 * @typedef {(Start | Batch | Drop) & { id: number }} Job
 * @typedef {{ type: "progress", bytes: number, total: number, files: number }} Progress
 * @typedef {{ changed: boolean, name: string, message: string, stack?: string, code?: string,
 *   errno?: number, syscall?: string, path?: string }} ErrorReport
 */

/** Bytes handed to the compressor at a time; files are read into it directly. */
const STAGE = 1 << 20;
/** A progress message at most every this many uncompressed bytes. */
const PROGRESS_EVERY = 8 << 20;
/** zstd job size: fixed (the bytes depend on it) and smaller than level 3's default 8 MB, which
 * would hold about 100 MB of job buffers with two threads. */
const JOB_SIZE = 4 << 20;
const BLOCK = 512;
const ZEROS = Buffer.alloc(2 * BLOCK);
/** Bytes of sources held at most at once for packing later (see `kept` in createPacker). */
const KEEP_LIMIT = 32 << 20;

/** native/pack-read.c's readFile answers for a file too large for the room, or not its size. */
const READ_TOO_LARGE = -2;
const READ_CHANGED = -3;

/** A failure the host turns into InputError ENVPACK_INPUT_MANIFEST_INVALID. */
class ChangedWhilePacking extends Error {}

/**
 * The packing state of one bundle: entries arrive in batches (each already in bundle order) and
 * are packed as they come; `finish` ends the archive and the zstd frame. Also run on the host's
 * own thread for small bundles (pack-in-thread.ts), so both give the same bytes.
 * @param {Start} job
 * @param {(progress: Progress) => void} onProgress
 * @param {Map<string, InstanceType<typeof zstd.CCtx>[]>} [contexts] idle compression contexts by
 *   level and threads: one is taken if there is one, and given back once the frame is ended
 */
export function createPacker(job, onProgress, contexts) {
  useNativeAddon(job.nativeAddon);
  const nativeRead = nativeAddon()?.readFile;
  const mtime = new Date(job.mtimeMs);
  const settings = `${job.level}/${job.threads}`;
  // Taken at the first bytes, not at the start: a bundle started while another is still packing
  // on this thread then reuses that one's context once it is finished.
  /** @type {InstanceType<typeof zstd.CCtx> | undefined} */
  let cctx;
  const context = () => {
    if (cctx !== undefined) return cctx;
    cctx = contexts?.get(settings)?.pop();
    if (cctx !== undefined) return cctx;
    cctx = new zstd.CCtx();
    cctx.setParameter(zstd.CParameter.compressionLevel, job.level);
    cctx.setParameter(zstd.CParameter.nbWorkers, job.threads);
    cctx.setParameter(zstd.CParameter.jobSize, JOB_SIZE);
    return cctx;
  };
  const hash = createHash("sha256");
  const out = Buffer.allocUnsafe(zstd.cStreamOutSize());
  // Atomics.wait needs a shared cell; it only ever times out (a short nap while the compression
  // threads catch up, instead of spinning on a core they need).
  const nap = new Int32Array(new SharedArrayBuffer(4));
  // The directory is made here, not by the host: the host then posts every job at once, with
  // no wait for an event-loop turn between a batch and the worker.
  mkdirSync(dirname(job.temp), { recursive: true });
  const fd = openSync(job.temp, "wx");
  let written = 0;
  const stage = Buffer.allocUnsafe(STAGE);
  let fill = 0;
  let bytes = 0;
  let reported = 0;
  /** Files (not directories or links) packed or being packed. */
  let files = 0;
  // Byte code sorts before its source (`__pycache__/` before lowercase names), and settling it
  // reads the source whole to hash it: those bytes are held here by source file and packed when
  // the source's entry comes, so each source is read once. Bounded by KEEP_LIMIT.
  /** @type {Map<string, import("./conda/hash-based-pyc.mjs").ReadSource>} */
  const kept = new Map();
  let keptBytes = 0;
  const keep = (
    /** @type {string} */ source,
    /** @type {import("./conda/hash-based-pyc.mjs").ReadSource} */ read,
  ) => {
    kept.set(source, read);
    keptBytes += read.bytes.length;
  };

  /** @param {Buffer} input @param {number} op */
  const compress = (input, op) => {
    for (;;) {
      const [remaining, produced, consumed] = context().compressStream2(
        out,
        input,
        op,
      );
      if (produced > 0) {
        hash.update(out.subarray(0, produced));
        for (let done = 0; done < produced;)
          done += writeSync(fd, out, done, produced - done);
        written += produced;
      }
      input = input.subarray(consumed);
      if (
        input.length === 0 &&
        (op === zstd.EndDirective.continue || remaining === 0)
      )
        return;
      if (produced === 0 && consumed === 0) Atomics.wait(nap, 0, 0, 0.5);
    }
  };
  const flushStage = () => {
    compress(stage.subarray(0, fill), zstd.EndDirective.continue);
    fill = 0;
  };
  /** @param {Uint8Array} bytes */
  const put = (bytes) => {
    for (let at = 0; at < bytes.length;) {
      if (fill === STAGE) flushStage();
      const n = Math.min(bytes.length - at, STAGE - fill);
      stage.set(bytes.subarray(at, at + n), fill);
      fill += n;
      at += n;
    }
  };
  // The total is the bytes packed once they all are; until then it is 0, unknown: summing the
  // sizes first would cost a stat of every file before the first byte.
  const report = (/** @type {boolean} */ done = false) =>
    onProgress({ type: "progress", bytes, total: done ? bytes : 0, files });
  /** Counts file bytes packed; reports every PROGRESS_EVERY of them, inside big files too. */
  const advance = (/** @type {number} */ n) => {
    bytes += n;
    if (bytes - reported < PROGRESS_EVERY) return;
    reported = bytes;
    report();
  };

  /**
   * Reads exactly `size` bytes of the open `file`, from byte `from` to its end, into the stage; a
   * file that changed size is an error. Each read asks for one byte more than is left where the
   * stage has room: a read that stops at the size is the end of the file, so most files take one
   * read and no probe.
   */
  const readInto = (
    /** @type {number} */ file,
    /** @type {string} */ source,
    /** @type {number} */ size,
    /** @type {number} */ from,
  ) => {
    for (let left = size, at = from; ;) {
      if (fill === STAGE) flushStage();
      const want = Math.min(left + 1, STAGE - fill);
      const got = readSync(file, stage, fill, want, at);
      at += got;
      // A byte past the size, or the end before it: the size the header holds is wrong.
      if (got > left || (got === 0 && left > 0))
        throw new ChangedWhilePacking(source);
      fill += got;
      left -= got;
      advance(got);
      if (left === 0 && got < want) return;
    }
  };

  const encodeHeader = headerEncoder(mtime);
  /** The tar header (and pax record, for long names) of one entry. */
  const putHeader = (
    /** @type {Entry} */ entry,
    /** @type {number} */ size,
    /** @type {boolean} */ executable,
  ) => {
    put(
      encodeHeader(
        entry.type === "file"
          ? {
              path: entry.path,
              type: "File",
              mode: executable ? 0o755 : 0o644,
              size,
            }
          : entry.type === "directory"
            ? // Directories end in "/", as tar tools write and list them.
              { path: `${entry.path}/`, type: "Directory", mode: 0o755, size }
            : {
                path: entry.path,
                type: "SymbolicLink",
                mode: 0o777,
                size,
                linkpath: entry.linkTarget,
              },
      ),
    );
  };

  /**
   * Packs a file of fewer bytes than the stage holds through the native addon: opened, stated
   * and read (through links) straight into the stage behind the room its one-block header takes,
   * as readInto would read it. Its size; -1 when it is read in JavaScript instead (no addon, a
   * larger file or header, any failure, which JavaScript then meets and throws as Node does).
   */
  const packNatively = (
    /** @type {Entry} */ entry,
    /** @type {string} */ source,
  ) => {
    if (nativeRead === undefined || !isOneBlock(entry.path)) return -1;
    if (STAGE - fill <= BLOCK) flushStage();
    let read = nativeRead(source, stage, fill + BLOCK, STAGE - fill - BLOCK);
    if (read === READ_TOO_LARGE && fill > 0) {
      flushStage();
      read = nativeRead(source, stage, BLOCK, STAGE - BLOCK);
    }
    if (read === READ_CHANGED) throw new ChangedWhilePacking(source);
    if (read < 0) return -1;
    const size = Math.floor(read / 2);
    files++;
    // One block, into the room left before the bytes (isOneBlock: no pax record).
    putHeader(entry, size, entry.executable ?? read % 2 === 1);
    fill += size;
    advance(size);
    return size;
  };

  return {
    /** Packs a batch of entries, in the order given. */
    add(/** @type {Entry[]} */ entries) {
      for (const entry of entries) {
        if (entry.type !== "file") {
          putHeader(entry, 0, false);
          continue;
        }
        let size;
        if (entry.data) {
          files++;
          size = entry.data.length;
          putHeader(entry, size, entry.executable === true);
          put(entry.data);
          advance(size);
        } else if (
          entry.pyc === undefined &&
          kept.has(/** @type {string} */ (entry.source))
        ) {
          // Read whole (through links) when its byte code was settled: those bytes, that mode.
          const source = /** @type {string} */ (entry.source);
          const read =
            /** @type {import("./conda/hash-based-pyc.mjs").ReadSource} */ (
              kept.get(source)
            );
          kept.delete(source);
          keptBytes -= read.bytes.length;
          files++;
          size = read.bytes.length;
          putHeader(entry, size, entry.executable ?? (read.mode & 0o111) !== 0);
          put(read.bytes);
          advance(size);
        } else if (
          entry.pyc !== undefined ||
          (size = packNatively(entry, /** @type {string} */ (entry.source))) < 0
        ) {
          // Byte code, and files the native addon did not read (packNatively), are read here.
          // The size and execute bit of what is opened (through links): the header holds the
          // size the bytes are then held to.
          const source = /** @type {string} */ (entry.source);
          const file = openSync(source, "r");
          try {
            const info = fstatSync(file);
            size = info.size;
            // Byte code is decided here, where the file is open anyway: packed hash-based, as
            // it is, or not at all (before its tar header). Its source's bytes are kept when the
            // source is packed after it (and within bounds).
            const head =
              entry.pyc === undefined
                ? undefined
                : settlePyc(
                    file,
                    size,
                    entry.pyc,
                    entry.pyc.source > source && keptBytes < KEEP_LIMIT
                      ? keep
                      : undefined,
                  );
            if (head === CHANGED)
              throw new ChangedWhilePacking(entry.pyc?.source ?? source);
            if (head === OMIT) continue;
            files++;
            putHeader(
              entry,
              size,
              entry.executable ?? (info.mode & 0o111) !== 0,
            );
            // A hash-based header replaces the file's first bytes.
            const from = head === undefined ? 0 : head.length;
            if (head !== undefined) {
              put(head);
              advance(head.length);
            }
            readInto(file, source, size - from, from);
          } finally {
            closeSync(file);
          }
        }
        const padding = (BLOCK - (size % BLOCK)) % BLOCK;
        if (padding > 0) put(ZEROS.subarray(0, padding));
      }
    },
    /** Ends the archive and the frame; the digest and size of what was written. */
    finish() {
      kept.clear();
      put(ZEROS);
      flushStage();
      compress(Buffer.alloc(0), zstd.EndDirective.end);
      report(true);
      // A context whose frame ended, reset, compresses the next frame to the bytes a new one
      // would: without a new set of job buffers to fault in and compression threads to start.
      if (contexts !== undefined && cctx !== undefined) {
        cctx.reset(zstd.ResetDirective.sessionOnly);
        const idle = contexts.get(settings) ?? [];
        idle.push(cctx);
        contexts.set(settings, idle);
      }
      return { digest: `sha256:${hash.digest("hex")}`, size: written };
    },
    close() {
      closeSync(fd);
    },
  };
}

/**
 * A packing failure as plain data (it crosses a thread): file-system fields kept, and whether a
 * source changed size while it was packed.
 * @param {unknown} error
 * @returns {ErrorReport}
 */
export function errorReport(error) {
  const e = /** @type {NodeJS.ErrnoException} */ (error);
  return {
    changed: error instanceof ChangedWhilePacking,
    name: e.name,
    message: e.message,
    stack: e.stack,
    code: e.code,
    errno: e.errno,
    syscall: e.syscall,
    path: e.path,
  };
}

// The jobs arrive as messages, so the host can start this worker (about 0.1 s to boot) before it
// knows the entries, and hand it the first of them while it is still planning the rest. Several
// bundles can share the worker, each under its own id: their jobs run in the order posted, each
// bundle's bytes as if it were alone.
/** @type {Map<number, ReturnType<typeof createPacker>>} */
const packers = new Map();
/** The compression contexts of bundles packed here, for the next ones. */
/** @type {Map<string, InstanceType<typeof zstd.CCtx>[]>} */
const contexts = new Map();
parentPort?.on("message", (/** @type {Job} */ job) => {
  const { id } = job;
  try {
    if (job.type === "start") {
      packers.set(
        id,
        createPacker(
          job,
          (progress) => parentPort?.postMessage({ ...progress, id }),
          contexts,
        ),
      );
      return;
    }
    const packer = packers.get(id);
    if (job.type === "drop") {
      packer?.close();
      packers.delete(id);
      parentPort?.postMessage({ type: "dropped", id });
      return;
    }
    if (packer === undefined) throw new Error("entries before start");
    packer.add(job.entries);
    if (!job.last) return;
    const done = packer.finish();
    packer.close();
    packers.delete(id);
    parentPort?.postMessage({ type: "done", id, ...done });
  } catch (error) {
    packers.get(id)?.close();
    packers.delete(id);
    parentPort?.postMessage({ type: "error", id, error: errorReport(error) });
  }
});
