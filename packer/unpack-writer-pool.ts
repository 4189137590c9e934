// The writer of a large archive: its entries' writes shared over a few worker threads, each
// creating files under the same root while the host reads and decompresses what comes next.
// Creating a file costs the kernel far more than its bytes; one thread creating them one by one
// is what made an unpack slower than `zstd -dc | tar -x`.

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { envpackCodeFile } from "../src/core/light.js";
import type { EntryWriter, UnpackOp } from "./entry-writer.js";

/** Bytes of file data per batch; batches are sent when full (or at 1024 operations). */
const BATCH_BYTES = 4 << 20;
const BATCH_OPS = 1024;
/** Batches in flight per thread before the reader waits: about 16 MB per thread whatever the bundle. */
const IN_FLIGHT = 4;
/** Writer threads at most: file creation scales with cores, not past them. */
const MAX_THREADS = Math.max(1, Math.min(4, availableParallelism()));

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

/** One writer thread and what the host keeps for it. */
interface Thread {
  worker: Worker;
  inFlight: number;
  /** Directory operations of batches sent to other threads, sent ahead of its next batch. */
  dirs: UnpackOp[];
  done: (() => void) | undefined;
}

/**
 * Writes entries under `root` (an empty directory) from up to MAX_THREADS worker threads, started
 * as the previous ones fill up (a layer of one large file keeps one). Batches go whole to one
 * thread, the least busy; a file that spans batches stays on its thread. Ordering, the one thing
 * that threads could break, is kept by construction:
 * - every thread receives every directory operation, in archive order, ahead of its next batch:
 *   a directory exists, with its archive mode, before any thread creates a file in it (a thread
 *   that finds a directory another made accepts it, as a directory listed twice is);
 * - symlinks and hard links are made after every file, on one thread: a hard link's target
 *   exists, and no symlink exists while files are created (each file is created with O_EXCL and
 *   O_NOFOLLOW under directories, never through a link; EntryGuard refused paths under one);
 * - each thread makes read-only, at `seal`, only the directories it created, once every write
 *   and link is done.
 * `failed` settles with the first error of any thread (an Error with the errno `code`, `syscall`
 * and `path` it had).
 */
export class WriterPool implements EntryWriter {
  readonly #root: string;
  readonly #readOnly: boolean;
  readonly #threads: Thread[] = [];
  readonly #free: Buffer[] = [];
  /** Every directory operation so far: what a thread started late is sent first. */
  readonly #allDirs: UnpackOp[] = [];
  /** Symlinks and hard links, made once every file is written. */
  readonly #links: UnpackOp[] = [];
  #ops: UnpackOp[] = [];
  #dirs: UnpackOp[] = [];
  #data: Buffer | undefined;
  #fill = 0;
  /** A file is open at the end of the batch being filled: its next batch goes to the same thread. */
  #fileOpen = false;
  #sticky: Thread | undefined;
  #waiting: (() => void) | undefined;
  #error: Error | undefined;
  #reject: (error: Error) => void = () => {};
  readonly failed: Promise<never>;

  constructor(root: string, readOnly: boolean) {
    this.#root = root;
    this.#readOnly = readOnly;
    this.failed = new Promise<never>((_, r) => (this.#reject = r));
    // Observed here so an unawaited failure is not an unhandled rejection.
    this.failed.catch(() => {});
    this.#start();
  }

  /** The first thread's error, once one has failed. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Queues one operation (without data). */
  op(op: UnpackOp): void {
    switch (op.k) {
      case "s":
      case "l":
        this.#links.push(op);
        return;
      case "d":
        this.#dirs.push(op);
        this.#allDirs.push(op);
        break;
      case "f":
        this.#fileOpen = true;
        break;
      case "e":
        this.#fileOpen = false;
        break;
    }
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

  /** Calls `proceed` once the threads have room for more (or one failed). */
  whenRoom(proceed: () => void): void {
    if (this.#hasRoom()) proceed();
    else this.#waiting = proceed;
  }

  /** Sends what is queued; resolves once every file, then every link, is written. */
  async finish(): Promise<void> {
    this.#flush();
    await Promise.all(this.#threads.map((t) => this.#ask(t, "end")));
    if (this.#links.length === 0) return;
    const first = this.#threads[0] as Thread;
    this.#send(first, [...first.dirs, ...this.#links], undefined);
    first.dirs = [];
    await this.#ask(first, "end");
  }

  /** Clears the directories' write bits (with `readOnly`): each thread those it created. */
  async seal(): Promise<void> {
    await Promise.all(this.#threads.map((t) => this.#ask(t, "seal")));
  }

  /** Stops every thread (at once, whatever it was doing). */
  async close(): Promise<void> {
    await Promise.all(
      this.#threads.map((t) => {
        t.worker.removeAllListeners("exit");
        return t.worker.terminate();
      }),
    );
  }

  #hasRoom(): boolean {
    if (this.#error !== undefined) return true;
    if (this.#sticky !== undefined && this.#sticky.inFlight >= IN_FLIGHT)
      return false;
    return this.#threads.some((t) => t.inFlight < IN_FLIGHT);
  }

  #fail(error: Error): void {
    if (this.#error !== undefined) return;
    this.#error = error;
    this.#reject(error);
    this.#wake();
  }

  #wake(): void {
    if (this.#waiting === undefined || !this.#hasRoom()) return;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting();
  }

  #start(): Thread {
    const thread: Thread = {
      worker: new Worker(envpackCodeFile("packer/unpack-worker.mjs")),
      inFlight: 0,
      // The batch being filled is about to go to it, with its own directories.
      dirs: this.#allDirs.slice(0, this.#allDirs.length - this.#dirs.length),
      done: undefined,
    };
    thread.worker.on("message", (message: FromWorker) => {
      if (message.type === "ack") {
        thread.inFlight--;
        if (message.data.byteLength === BATCH_BYTES)
          this.#free.push(Buffer.from(message.data));
        this.#wake();
      } else if (message.type === "done") {
        thread.done?.();
      } else {
        const { message: text, ...errno } = message.error;
        this.#fail(Object.assign(new Error(text), errno));
      }
    });
    thread.worker.on("error", (error) => this.#fail(error));
    thread.worker.on("exit", (code) =>
      this.#fail(new Error(`an unpacking worker exited with code ${code}`)),
    );
    thread.worker.postMessage({
      type: "start",
      root: this.#root,
      readOnly: this.#readOnly,
    });
    this.#threads.push(thread);
    return thread;
  }

  /** The thread for the next batch: the sticky one, an idle one, a new one, or the least busy. */
  #pick(): Thread {
    if (this.#sticky !== undefined) return this.#sticky;
    let best = this.#threads[0] as Thread;
    for (const thread of this.#threads)
      if (thread.inFlight < best.inFlight) best = thread;
    if (best.inFlight > 0 && this.#threads.length < MAX_THREADS)
      return this.#start();
    return best;
  }

  #flush(): void {
    if (this.#ops.length === 0 || this.#error !== undefined) return;
    const thread = this.#pick();
    this.#send(thread, [...thread.dirs, ...this.#ops], this.#data);
    thread.dirs = [];
    for (const other of this.#threads)
      if (other !== thread) other.dirs.push(...this.#dirs);
    this.#sticky = this.#fileOpen ? thread : undefined;
    this.#ops = [];
    this.#dirs = [];
    this.#data = undefined;
    this.#fill = 0;
  }

  #send(thread: Thread, ops: UnpackOp[], data: Buffer | undefined): void {
    const buffer = (data ?? Buffer.allocUnsafeSlow(0)).buffer as ArrayBuffer;
    thread.worker.postMessage({ type: "batch", ops, data: buffer }, [buffer]);
    thread.inFlight++;
  }

  async #ask(thread: Thread, type: "end" | "seal"): Promise<void> {
    const done = new Promise<void>((resolve) => (thread.done = resolve));
    thread.worker.postMessage({ type });
    await Promise.race([done, this.failed]);
  }
}
