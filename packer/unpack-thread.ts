// One writing thread (unpack-worker.mjs) shared by the archives a bundle unpacks side by side:
// a thread costs ~80 ms of CPU to start, more than writing a small layer. Each archive writes
// through its own session; batches and their buffers are shared.

import { Worker } from "node:worker_threads";
import { envpackCodeFile } from "../src/core/light.js";
import type { EntryWriter } from "./entry-writer.js";
import { DIR, END, FILE, LINK, SYMLINK, WRITE } from "./unpack-ops.mjs";

/** A writing thread, started when its first session opens; see {@link openWriterThread}. */
export interface WriterThread {
  /** A writer of one archive's entries under `root` (an empty directory), on this thread. */
  open(root: string, readOnly: boolean): EntryWriter;
  /**
   * Starts the thread now, if it is not running yet: its start-up (tens of ms, on its own core)
   * then overlaps what the caller does before its first session opens.
   */
  start(): void;
  /** Stops the thread (at once); every session still open fails. */
  close(): Promise<void>;
}

type FromWorker =
  | { type: "ack"; id: number; data: ArrayBuffer }
  | { type: "done"; id: number }
  | { type: "dropped"; id: number }
  | {
      type: "error";
      id: number;
      error: {
        message: string;
        code?: string;
        syscall?: string;
        path?: string;
      };
    };

/** Bytes of file data per batch; batches are sent when full (or at 1024 operations). */
const BATCH_BYTES = 1 << 20;
const BATCH_OPS = 1024;
/** Batches of one session in flight before its reader waits: about 4 MB whatever the bundle. */
const IN_FLIGHT = 4;

/**
 * A writing thread for the archives of one bundle. Nothing starts until a session opens; the
 * caller closes it once every session is closed.
 */
export function openWriterThread(): WriterThread {
  let worker: Worker | undefined;
  let nextId = 0;
  const sessions = new Map<number, Session>();
  /** Batch buffers given back by the worker, for any session's next batch. */
  const free: Buffer[] = [];
  let crashed: Error | undefined;

  const crash = (error: Error) => {
    crashed ??= error;
    for (const session of sessions.values()) session.fail(error);
  };
  const start = (): Worker => {
    const started = new Worker(envpackCodeFile("packer/unpack-worker.mjs"));
    started.on("message", (message: FromWorker) => {
      const session = sessions.get(message.id);
      if (session === undefined) return;
      if (message.type === "ack") {
        if (message.data.byteLength === BATCH_BYTES)
          free.push(Buffer.from(message.data));
        session.acked();
      } else if (message.type === "done" || message.type === "dropped") {
        session.answered(message.type);
      } else {
        const { message: text, ...errno } = message.error;
        session.fail(Object.assign(new Error(text), errno));
      }
    });
    started.on("error", crash);
    started.on("exit", (code) =>
      crash(new Error(`the unpacking worker exited with code ${code}`)),
    );
    return started;
  };

  return {
    start() {
      worker ??= start();
    },
    open(root, readOnly) {
      worker ??= start();
      const id = nextId++;
      const session = new Session(id, worker, free, () => sessions.delete(id));
      sessions.set(id, session);
      if (crashed !== undefined) session.fail(crashed);
      else worker.postMessage({ type: "start", id, root, readOnly });
      return session;
    },
    async close() {
      if (worker === undefined) return;
      worker.removeAllListeners("exit");
      crash(new Error("the unpacking worker was stopped"));
      await worker.terminate();
    },
  };
}

/**
 * One archive's writes through the shared worker. `failed` settles with the worker's first error
 * for it (an Error with the errno `code`, `syscall` and `path` it had).
 */
class Session implements EntryWriter {
  readonly #id: number;
  readonly #worker: Worker;
  readonly #free: Buffer[];
  readonly #forget: () => void;
  /** The batch being filled: pairs of an operation code and its number (unpack-ops.mjs). */
  #codes = new Int32Array(2 * BATCH_OPS);
  #count = 0;
  /** Its paths, each ended by a NUL. */
  #text = "";
  #data: Buffer | undefined;
  #fill = 0;
  #inFlight = 0;
  #waiting: (() => void) | undefined;
  #done: (() => void) | undefined;
  #dropped: (() => void) | undefined;
  #error: Error | undefined;
  #closed = false;
  readonly failed: Promise<never>;
  #reject: (error: Error) => void = () => {};

  constructor(id: number, worker: Worker, free: Buffer[], forget: () => void) {
    this.#id = id;
    this.#worker = worker;
    this.#free = free;
    this.#forget = forget;
    this.failed = new Promise<never>((_, r) => (this.#reject = r));
    // Observed here so an unawaited failure is not an unhandled rejection.
    this.failed.catch(() => {});
  }

  get error(): Error | undefined {
    return this.#error;
  }

  fail(error: Error): void {
    if (this.#error !== undefined) return;
    this.#error = error;
    this.#reject(error);
    this.#wake();
    // The worker writes nothing more for a session once it failed (or it is gone).
    this.answered("dropped");
  }

  acked(): void {
    this.#inFlight--;
    this.#wake();
  }

  answered(type: "done" | "dropped"): void {
    const answer = type === "done" ? this.#done : this.#dropped;
    if (type === "done") this.#done = undefined;
    else this.#dropped = undefined;
    answer?.();
  }

  dir(path: string, mode: number): void {
    this.#text += `${path}\0`;
    this.#push(DIR, mode);
  }

  file(path: string, mode: number): void {
    this.#text += `${path}\0`;
    this.#push(FILE, mode);
  }

  write(chunk: Uint8Array): void {
    for (let at = 0; at < chunk.length;) {
      if (this.#data === undefined)
        this.#data = this.#free.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
      const n = Math.min(chunk.length - at, BATCH_BYTES - this.#fill);
      this.#data.set(chunk.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
      this.#push(WRITE, n);
      // A full data buffer ends its batch.
      if (this.#fill === BATCH_BYTES) this.#flush();
    }
  }

  end(): void {
    this.#push(END, 0);
  }

  symlink(path: string, target: string): void {
    this.#text += `${path}\0${target}\0`;
    this.#push(SYMLINK, 0);
  }

  link(path: string, target: string): void {
    this.#text += `${path}\0${target}\0`;
    this.#push(LINK, 0);
  }

  /** Whether fewer than IN_FLIGHT batches wait for the worker (or it failed). */
  hasRoom(): boolean {
    return this.#inFlight < IN_FLIGHT || this.#error !== undefined;
  }

  whenRoom(proceed: () => void): void {
    if (this.hasRoom()) proceed();
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

  /**
   * Ends the session: resolves once the worker will write nothing more under its root (what was
   * queued before is written first, at most IN_FLIGHT batches).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const dropped = new Promise<void>((resolve) => (this.#dropped = resolve));
    this.#worker.postMessage({ type: "drop", id: this.#id });
    if (this.#error === undefined) await dropped;
    this.#forget();
  }

  async #ask(type: "end" | "seal"): Promise<void> {
    const done = new Promise<void>((resolve) => (this.#done = resolve));
    this.#worker.postMessage({ type, id: this.#id });
    await Promise.race([done, this.failed]);
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  /** Queues one operation; a batch whose operations are full is sent. */
  #push(code: number, n: number): void {
    if (this.#error !== undefined) return; // nothing more is sent (see #flush)
    this.#codes[2 * this.#count] = code;
    this.#codes[2 * this.#count + 1] = n;
    if (++this.#count === BATCH_OPS) this.#flush();
  }

  #flush(): void {
    if (this.#count === 0 || this.#error !== undefined) return;
    const data = (this.#data ?? Buffer.allocUnsafeSlow(0))
      .buffer as ArrayBuffer;
    const codes = this.#codes.buffer as ArrayBuffer;
    this.#worker.postMessage(
      {
        type: "batch",
        id: this.#id,
        codes,
        count: this.#count,
        text: this.#text,
        data,
      },
      [codes, data],
    );
    this.#inFlight++;
    this.#codes = new Int32Array(2 * BATCH_OPS);
    this.#count = 0;
    this.#text = "";
    this.#data = undefined;
    this.#fill = 0;
  }
}
