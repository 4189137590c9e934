// @ts-check
// The writing half of unpackBundle for a large archive, run in a worker thread: it applies the
// operations of unpack-ops.mjs while the host reads and decompresses what comes next. Creating
// thousands of files is the slow part of an unpack (each open that creates a file costs the
// kernel far more than its bytes); on its own thread it overlaps the decompression, as
// `zstd -dc | tar -x` overlaps its two processes.

import { parentPort } from "node:worker_threads";
import { createOpApplier } from "./unpack-ops.mjs";

/**
 * @typedef {import("./unpack-ops.mjs").Op} Op
 * @typedef {{ type: "start", root: string, readOnly: boolean }} Start
 * @typedef {{ type: "batch", ops: Op[], data: ArrayBuffer }} Batch
 * @typedef {{ type: "end" }} End
 * @typedef {{ type: "seal" }} Seal
 */

/** @type {import("./unpack-ops.mjs").OpApplier | undefined} */
let applier;
let failed = false;

parentPort?.on(
  "message",
  (/** @type {Start | Batch | End | Seal} */ message) => {
    if (failed) return;
    try {
      if (message.type === "start") {
        applier = createOpApplier(message.root, message.readOnly);
      } else if (message.type === "batch") {
        applier?.apply(message.ops, Buffer.from(message.data));
        // The buffer goes back to the host for the next batch.
        parentPort?.postMessage({ type: "ack", data: message.data }, [
          message.data,
        ]);
      } else if (message.type === "seal") {
        applier?.seal();
        parentPort?.postMessage({ type: "done" });
      } else {
        applier?.close();
        parentPort?.postMessage({ type: "done" });
      }
    } catch (error) {
      failed = true;
      try {
        applier?.close();
      } catch {
        // The first error is the one to report.
      }
      const e = /** @type {NodeJS.ErrnoException} */ (error);
      parentPort?.postMessage({
        type: "error",
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
