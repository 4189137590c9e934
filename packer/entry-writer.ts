// What unpackBundle writes its checked entries through: one interface, written inline or by
// worker threads (unpack-writer.ts picks).

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
  /** Calls `proceed` once the reader may go on. */
  whenRoom(proceed: () => void): void;
  /** Resolves once everything queued is written. */
  finish(): Promise<void>;
  /** After finish: with `readOnly`, clears the write bits of every directory made. */
  seal(): Promise<void>;
  /** Stops writing (at once) and releases what it holds. */
  close(): Promise<void>;
}
