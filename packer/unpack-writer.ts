// Where unpackBundle's checked entries are written: on a worker thread for a large archive
// (unpack-thread.ts: queued into batches, the reader held back while too much is in flight), on
// the reading thread for a small one, which does not pay a thread's start.

import type { EntryWriter } from "./entry-writer.js";
import { createOpApplier, type OpApplier } from "./unpack-ops.mjs";
import type { WriterThread } from "./unpack-thread.js";

export type { EntryWriter };

/**
 * A writer for an archive of `bytes` compressed bytes under `root` (an empty directory): inline
 * below INLINE_BYTES, where a worker's start would cost more than the whole write, else a session
 * on `thread`. With `readOnly`, files are created without write bits and `seal` makes the
 * directories so.
 */
export function openEntryWriter(
  root: string,
  bytes: number,
  readOnly: boolean,
  thread: WriterThread,
): EntryWriter {
  return writesInline(bytes)
    ? new InlineWriter(root, readOnly)
    : thread.open(root, readOnly);
}

/** Whether {@link openEntryWriter} writes an archive of `bytes` compressed bytes inline. */
export function writesInline(bytes: number): boolean {
  return bytes < INLINE_BYTES;
}

/** Archives smaller than this (compressed) are written on the reading thread: an app layer. */
const INLINE_BYTES = 256 * 1024;

/** Writes each operation as it comes, on the calling thread. */
class InlineWriter implements EntryWriter {
  readonly #applier: OpApplier;
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

  dir(path: string, mode: number): void {
    this.#apply((a) => a.dir(path, mode));
  }

  file(path: string, mode: number): void {
    this.#apply((a) => a.file(path, mode));
  }

  write(chunk: Uint8Array): void {
    this.#apply((a) => a.write(chunk, 0, chunk.length));
  }

  end(): void {
    this.#apply((a) => a.end());
  }

  symlink(path: string, target: string): void {
    this.#apply((a) => a.symlink(path, target));
  }

  link(path: string, target: string): void {
    this.#apply((a) => a.link(path, target));
  }

  hasRoom(): boolean {
    return true;
  }

  whenRoom(proceed: () => void): void {
    proceed();
  }

  async finish(): Promise<void> {
    this.#apply((a) => a.close());
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

  /** Applies one operation unless an earlier one failed; records the first failure. */
  #apply(step: (applier: OpApplier) => void): void {
    if (this.#error !== undefined) return;
    try {
      step(this.#applier);
    } catch (error) {
      this.#error = error as Error;
      this.#reject(this.#error);
    }
  }
}
