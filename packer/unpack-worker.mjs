// @ts-check
// The writing half of unpackBundle for large archives, run in a worker thread: it applies the
// batches of unpack-ops.mjs while the host reads and decompresses what comes next. Creating
// thousands of files is the slow part of an unpack (each open that creates a file costs the
// kernel far more than its bytes); on its own thread it overlaps the decompression, as
// `zstd -dc | tar -x` overlaps its two processes. One thread serves every archive of a bundle
// (its layers, unpacked side by side): each is a session with its own id and root.

import { parentPort } from "node:worker_threads";
import { createOpApplier } from "./unpack-ops.mjs";

/**
 * @typedef {{ type: "start", id: number, root: string, readOnly: boolean }} Start
 * @typedef {{ type: "batch", id: number, codes: ArrayBuffer, count: number, text: string,
 *   data: ArrayBuffer }} Batch  in the encoding of unpack-ops.mjs
 * @typedef {{ type: "end" | "seal" | "drop", id: number }} Control
 */

/**
 * Open sessions by id; a session that failed stays, without an applier, until it is dropped,
 * so that what was queued for it after its error is skipped.
 * @type {Map<number, import("./unpack-ops.mjs").OpApplier | undefined>}
 */
const sessions = new Map();

parentPort?.on(
  "message",
  (/** @type {Start | Batch | Control} */ message) => {
    const { id } = message;
    if (message.type === "start") {
      sessions.set(id, createOpApplier(message.root, message.readOnly));
      return;
    }
    if (message.type === "drop") {
      // Messages arrive in order: nothing of this session is applied after this one.
      const applier = sessions.get(id);
      sessions.delete(id);
      try {
        applier?.close();
      } catch {
        // The session is abandoned (its root is removed next): nothing is left to report to.
      }
      parentPort?.postMessage({ type: "dropped", id });
      return;
    }
    const applier = sessions.get(id);
    if (applier === undefined) return;
    try {
      if (message.type === "batch") {
        applier.applyBatch(
          new Int32Array(message.codes),
          message.count,
          message.text,
          Buffer.from(message.data),
        );
        // The buffer goes back to the host for the next batch.
        parentPort?.postMessage({ type: "ack", id, data: message.data }, [
          message.data,
        ]);
      } else {
        if (message.type === "seal") applier.seal();
        else applier.close();
        parentPort?.postMessage({ type: "done", id });
      }
    } catch (error) {
      sessions.set(id, undefined);
      try {
        applier.close();
      } catch {
        // The first error is the one to report.
      }
      const e = /** @type {NodeJS.ErrnoException} */ (error);
      parentPort?.postMessage({
        type: "error",
        id,
        error: {
          message: e.message,
          code: e.code,
          syscall: e.syscall,
          path: e.path,
        },
      });
    }
  },
);
