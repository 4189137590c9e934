// Moving blob bytes: a response body written to a file while hashed, an upload body counted
// into progress events, both reporting at most every 250 ms.

import type { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Digest, OnEvent } from "../core/index.js";

/** Progress at most this often (besides a transfer's first and last event), in ms. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * Writes a response body to a new file while hashing it. The socket's chunks are gathered into
 * batches of 4 MB, each written with one writev while the next one arrives (at most one write in
 * flight): an awaited write per chunk, or a receive stalled by every write, would cost more than
 * the transfer. A failure of the body itself (the connection dropped) goes through `lost`; file
 * errors pass unchanged.
 */
export async function receive(
  body: NodeJS.ReadableStream,
  file: string,
  how: {
    hash: ReturnType<typeof createHash>;
    /** Called for every chunk. */
    arrived: () => void;
    /** Bytes so far: 0 first, the total last, at most every 250 ms between. */
    progress: (bytes: number) => void;
    lost: (error: unknown) => Error;
  },
): Promise<void> {
  const { hash, arrived, lost } = how;
  const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let handle: FileHandle | undefined;
  let writing: Promise<unknown> = Promise.resolve();
  try {
    handle = await open(file, "wx");
    const to = handle;
    let batch: Buffer[] = [];
    let batched = 0;
    let position = 0;
    let bytes = 0;
    const report = throttled(how.progress);
    report(0);
    const flush = async () => {
      await writing;
      const buffers = batch;
      const at = position;
      position += batched;
      batch = [];
      batched = 0;
      writing = writeAll(to, buffers, at);
      // Seen by the next flush, or by the final await; not unhandled meanwhile.
      writing.catch(() => {});
    };
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (error) {
        throw lost(error);
      }
      if (next.done === true) break;
      const chunk = next.value;
      arrived();
      hash.update(chunk);
      bytes += chunk.length;
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WRITE_BATCH) await flush();
      report(bytes);
    }
    await flush();
    await writing;
    report(bytes, true);
  } finally {
    // Stops the body when a write failed (a no-op once it ended).
    await chunks.return?.();
    await writing.catch(() => {});
    await handle?.close();
  }
}

/** Bytes of received chunks gathered into one write. */
const WRITE_BATCH = 4 * 1024 * 1024;

/** Writes `buffers` at `position`, however many calls that takes. */
async function writeAll(
  handle: FileHandle,
  buffers: Buffer[],
  position: number,
): Promise<void> {
  let at = position;
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest, at);
    at += bytesWritten;
    const left: Buffer[] = [];
    for (const buffer of rest) {
      if (bytesWritten >= buffer.length) bytesWritten -= buffer.length;
      else {
        left.push(buffer.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    rest = left;
  }
}

/**
 * An upload body: the source piped through a pass-through that counts bytes into
 * `registry:transfer` events.
 */
export function counted(
  source: NodeJS.ReadableStream,
  direction: "push" | "pull",
  digest: Digest,
  total: number,
  onEvent: OnEvent | undefined,
): Transform {
  let bytes = 0;
  const report = throttled((sent) =>
    onEvent?.({
      type: "registry:transfer",
      direction,
      digest,
      bytes: sent,
      total,
    }),
  );
  report(0);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      report(bytes);
      callback(null, chunk);
    },
    flush(callback) {
      report(bytes, true);
      callback();
    },
  });
  pipeline(source, counter).catch((error: unknown) =>
    counter.destroy(error as Error),
  );
  return counter;
}

/**
 * A progress reporter that passes on the first call, the last (`end`), and otherwise at most one
 * call per {@link PROGRESS_INTERVAL_MS}: a loopback transfer moves hundreds of MB a second.
 */
export function throttled(
  report: (bytes: number) => void,
): (bytes: number, end?: boolean) => void {
  let at = -Infinity;
  return (bytes, end = false) => {
    const now = Date.now();
    if (!end && now - at < PROGRESS_INTERVAL_MS) return;
    at = now;
    report(bytes);
  };
}
