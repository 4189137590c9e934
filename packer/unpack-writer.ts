// Where unpackBundle's checked entries are written: on a worker thread for a large archive
// (queued into batches, the reader held back while too much is in flight), on the reading thread
// for a small one, which does not pay a thread's start.

import { Worker } from "node:worker_threads";
import { envpackCodeFile } from "../src/core/light.js";
import { createOpApplier, type Op } from "./unpack-ops.mjs";

/** One write operation (see unpack-ops.mjs). */
export type UnpackOp = Op;

/** The writer of one unpack's entries under its root. */
export interface EntryWriter {
  /** Settles with the first write error (an Error with the errno `code`, `syscall`, `path`). */
  readonly failed: Promise<never>;
  /** That error, once there is one. */
  readonly error: Error | undefined;
  /** Queues one operation (without data). */
  op(op: UnpackOp): void;
  /** Queues bytes for the file opened last. */
  write(chunk: Uint8Array): void;
  /** Calls `proceed` once the reader may go on. */
  whenRoom(proceed: () => void): void;
  /** Resolves once everything queued is written. */
  finish(): Promise<void>;
  /** After finish: with `readOnly`, clears the write bits of every directory made. */
  seal(): Promise<void>;
  /** Stops writing (at once) and releases what it holds. */
  close(): Promise<void>;
}

/**
 * A writer for an archive of `bytes` compressed bytes under `root` (an empty directory): inline
 * below INLINE_BYTES, where a worker's start would cost more than the whole write, else a worker.
 * With `readOnly`, files are created without write bits and `seal` makes the directories so.
 */
export function openEntryWriter(
  root: string,
  bytes: number,
  readOnly = false,
): EntryWriter {
  return bytes < INLINE_BYTES
    ? new InlineWriter(root, readOnly)
    : new UnpackWriter(root, readOnly);
}

/** Archives smaller than this (compressed) are written on the reading thread: an app layer. */
const INLINE_BYTES = 256 * 1024;

/** Writes each operation as it comes, on the calling thread. */
class InlineWriter implements EntryWriter {
  readonly #applier: ReturnType<typeof createOpApplier>;
  #error: Error | undefined;
  readonly failed: Promise<never>;
  #reject: (error: Error) => void = () => {};

  constructor(root: string, readOnly: boolean) {
    this.#applier = createOpApplier(root, readOnly);
    this.failed = new Promise<never>((_, r) => (this.#reject = r));
    // Observed here so an unawaited failure is not an unhandled rejection.
    this.failed.catch(() => {});
  }

  get error(): Error | undefined {
    return this.#error;
  }

  op(op: UnpackOp): void {
    this.#apply([op], EMPTY);
  }

  write(chunk: Uint8Array): void {
    this.#apply([{ k: "w", n: chunk.length }], chunk);
  }

  whenRoom(proceed: () => void): void {
    proceed();
  }

  async finish(): Promise<void> {
    this.#apply([], EMPTY);
    this.#applier.close();
    if (this.#error !== undefined) throw this.#error;
  }

  async seal(): Promise<void> {
    this.#applier.seal();
  }

  async close(): Promise<void> {
    try {
      this.#applier.close();
    } catch (error) {
      // Closing after a failure: the first error is the one reported.
      this.#error ??= error as Error;
    }
  }

  #apply(ops: UnpackOp[], data: Uint8Array): void {
    if (this.#error !== undefined) return;
    try {
      this.#applier.apply(ops, data);
    } catch (error) {
      this.#error = error as Error;
      this.#reject(this.#error);
    }
  }
}

const EMPTY = new Uint8Array(0);

type FromWorker =
  | { type: "ack"; data: ArrayBuffer }
  | { type: "done" }
  | {
      type: "error";
      error: {
        message: string;
        code?: string;
        syscall?: string;
        path?: string;
      };
    };

/** Bytes of file data per batch; batches are sent when full (or at 1024 operations). */
const BATCH_BYTES = 4 << 20;
const BATCH_OPS = 1024;
/** Batches in flight before the reader waits: bounds memory to about 16 MB whatever the bundle. */
const IN_FLIGHT = 4;

/**
 * Writes entries under `root` (an empty directory) from a worker thread. `failed` settles with the
 * worker's first error (an Error with the errno `code`, `syscall` and `path` it had).
 */
class UnpackWriter implements EntryWriter {
  readonly #worker: Worker;
  readonly #free: Buffer[] = [];
  #ops: UnpackOp[] = [];
  #data: Buffer | undefined;
  #fill = 0;
  #inFlight = 0;
  #waiting: (() => void) | undefined;
  #done: (() => void) | undefined;
  #error: Error | undefined;
  readonly failed: Promise<never>;

  constructor(root: string, readOnly: boolean) {
    this.#worker = new Worker(envpackCodeFile("packer/unpack-worker.mjs"));
    let reject: (error: Error) => void = () => {};
    this.failed = new Promise<never>((_, r) => (reject = r));
    // Observed here so an unawaited failure is not an unhandled rejection.
    this.failed.catch(() => {});
    const fail = (error: Error) => {
      if (this.#error !== undefined) return;
      this.#error = error;
      reject(error);
      this.#waiting?.();
    };
    this.#worker.on("message", (message: FromWorker) => {
      if (message.type === "ack") {
        this.#inFlight--;
        if (message.data.byteLength === BATCH_BYTES)
          this.#free.push(Buffer.from(message.data));
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting?.();
      } else if (message.type === "done") {
        this.#done?.();
      } else {
        const { message: text, ...errno } = message.error;
        fail(Object.assign(new Error(text), errno));
      }
    });
    this.#worker.on("error", fail);
    this.#worker.on("exit", (code) =>
      fail(new Error(`the unpacking worker exited with code ${code}`)),
    );
    this.#worker.postMessage({ type: "start", root, readOnly });
  }

  /** The worker's first error, once it has failed. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Queues one operation (without data). */
  op(op: UnpackOp): void {
    this.#ops.push(op);
    if (this.#ops.length >= BATCH_OPS) this.#flush();
  }

  /** Queues bytes for the file opened last. */
  write(chunk: Uint8Array): void {
    for (let at = 0; at < chunk.length;) {
      if (this.#data === undefined)
        this.#data = this.#free.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
      const n = Math.min(chunk.length - at, BATCH_BYTES - this.#fill);
      this.#data.set(chunk.subarray(at, at + n), this.#fill);
      this.#ops.push({ k: "w", n });
      this.#fill += n;
      at += n;
      if (this.#fill === BATCH_BYTES) this.#flush();
    }
  }

  /** Calls `proceed` once fewer than IN_FLIGHT batches wait for the worker (or it failed). */
  whenRoom(proceed: () => void): void {
    if (this.#inFlight < IN_FLIGHT || this.#error !== undefined) proceed();
    else this.#waiting = proceed;
  }

  /** Sends what is queued and resolves when the worker has written everything. */
  async finish(): Promise<void> {
    this.#flush();
    await this.#ask("end");
  }

  /** Clears the directories' write bits (with `readOnly`), on the worker: it knows them all. */
  async seal(): Promise<void> {
    await this.#ask("seal");
  }

  async #ask(type: "end" | "seal"): Promise<void> {
    const done = new Promise<void>((resolve) => (this.#done = resolve));
    this.#worker.postMessage({ type });
    await Promise.race([done, this.failed]);
  }

  /** Stops the worker (at once, whatever it was doing). */
  async close(): Promise<void> {
    this.#worker.removeAllListeners("exit");
    await this.#worker.terminate();
  }

  #flush(): void {
    if (this.#ops.length === 0 || this.#error !== undefined) return;
    const data = this.#data ?? Buffer.allocUnsafeSlow(0);
    const buffer = data.buffer as ArrayBuffer;
    this.#worker.postMessage({ type: "batch", ops: this.#ops, data: buffer }, [
      buffer,
    ]);
    this.#inFlight++;
    this.#ops = [];
    this.#data = undefined;
    this.#fill = 0;
  }
}
