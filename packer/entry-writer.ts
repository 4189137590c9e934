// The interface through which unpackBundle hands checked entries to be written (inline or on a
// writing thread: unpack-writer.ts, unpack-thread.ts).

/**
 * The writer of one unpack's entries under its root. Paths are canonical bundle-relative paths
 * that EntryGuard accepted; the operations are queued (or applied) in the order called.
 */
export interface EntryWriter {
  /** Settles with the first write error (an Error with the errno `code`, `syscall`, `path`). */
  readonly failed: Promise<never>;
  /** That error, once there is one. */
  readonly error: Error | undefined;
  /** A directory (and its missing parents) with the archive's `mode`. */
  dir(path: string, mode: number): void;
  /** A new regular file with the archive's `mode`: the file {@link write} writes to. */
  file(path: string, mode: number): void;
  /** Bytes for the file opened last (copied or written before this returns). */
  write(chunk: Uint8Array): void;
  /** Closes the file opened last. */
  end(): void;
  /** A symlink at `path` whose text is `target`. */
  symlink(path: string, target: string): void;
  /** A hardlink at `path` to the file `target` (canonical, written before it). */
  link(path: string, target: string): void;
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
