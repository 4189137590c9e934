// The interface through which unpackBundle hands checked entries to be written (inline or on a
// writing thread: unpack-writer.ts, unpack-thread.ts).

import type { Op } from "./unpack-ops.mjs";

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
  /** Whether the reader may go on now (else it waits for {@link whenRoom}). */
  hasRoom(): boolean;
  /** Calls `proceed` once the reader may go on: at once when it may now. */
  whenRoom(proceed: () => void): void;
  /** Resolves once everything queued is written. */
  finish(): Promise<void>;
  /** After finish: with `readOnly`, clears the write bits of every directory made. */
  seal(): Promise<void>;
  /** Stops writing and releases what it holds; resolves once nothing more is written. */
  close(): Promise<void>;
}
