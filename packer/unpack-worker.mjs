// @ts-check
// The writing half of unpackBundle, run in a worker thread: it creates the directories, files and
// links the host has already read from the archive and checked (EntryGuard), while the host
// reads and decompresses what comes next. Creating thousands of files is the slow part of an
// unpack (each open that creates a file costs the kernel far more than its bytes); on its own
// thread it overlaps the decompression, as `zstd -dc | tar -x` overlaps its two processes.
// Files are created with O_EXCL and O_NOFOLLOW: nothing that already exists is replaced or
// followed. Modes come from the archive (setuid, setgid and sticky bits dropped), less the
// umask; mtimes are not restored (a bundle's are all the same fixed date).

import {
  closeSync,
  constants,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  symlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { parentPort } from "node:worker_threads";

/**
 * @typedef {{ k: "d", p: string, m: number } | { k: "f", p: string, m: number }
 *   | { k: "w", n: number } | { k: "e" } | { k: "s", p: string, t: string }
 *   | { k: "l", p: string, t: string }} Op
 *   Directory, open a file, write the next n bytes of the batch's data to it, close it, symlink
 *   (t: the link's text), hardlink (t: the bundle-relative path of a file written before).
 * @typedef {{ type: "start", root: string }} Start
 * @typedef {{ type: "batch", ops: Op[], data: ArrayBuffer }} Batch
 * @typedef {{ type: "end" }} End
 */

const CREATE =
  constants.O_WRONLY |
  constants.O_CREAT |
  constants.O_EXCL |
  constants.O_NOFOLLOW;

/** @type {string} */
let root = "";
/** Directories known to exist, by bundle-relative path ("" is the root). */
const made = new Set([""]);
let fd = -1;
let failed = false;

/** @param {string} path */
const parentOf = (path) => {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
};

/**
 * Makes `dir` and its missing parents (an archive need not list them). The host refused every
 * path under a symlink of the bundle, and the root is new: nothing here follows a link.
 * @param {string} dir
 * @param {number} mode
 */
const ensureDir = (dir, mode = 0o755) => {
  if (made.has(dir)) return;
  ensureDir(parentOf(dir));
  try {
    mkdirSync(join(root, dir), (mode & 0o777) | 0o700);
  } catch (error) {
    // A directory listed twice is fine; anything else in its place is a conflict.
    if (
      /** @type {NodeJS.ErrnoException} */ (error).code !== "EEXIST" ||
      !lstatSync(join(root, dir)).isDirectory()
    )
      throw error;
  }
  made.add(dir);
};

const closeFile = () => {
  if (fd < 0) return;
  const open = fd;
  fd = -1;
  closeSync(open);
};

/** @param {Batch} batch */
const apply = (batch) => {
  const data = Buffer.from(batch.data);
  let at = 0;
  for (const op of batch.ops) {
    switch (op.k) {
      case "d":
        ensureDir(op.p, op.m);
        break;
      case "f":
        closeFile();
        ensureDir(parentOf(op.p));
        fd = openSync(join(root, op.p), CREATE, op.m & 0o777);
        break;
      case "w":
        for (let done = 0; done < op.n;)
          done += writeSync(fd, data, at + done, op.n - done);
        at += op.n;
        break;
      case "e":
        closeFile();
        break;
      case "s":
        ensureDir(parentOf(op.p));
        symlinkSync(op.t, join(root, op.p));
        break;
      case "l":
        ensureDir(parentOf(op.p));
        linkSync(join(root, op.t), join(root, op.p));
        break;
    }
  }
};

parentPort?.on("message", (/** @type {Start | Batch | End} */ message) => {
  if (failed) return;
  try {
    if (message.type === "start") {
      root = message.root;
    } else if (message.type === "batch") {
      apply(message);
      // The buffer goes back to the host for the next batch.
      parentPort?.postMessage({ type: "ack", data: message.data }, [
        message.data,
      ]);
    } else {
      closeFile();
      parentPort?.postMessage({ type: "done" });
    }
  } catch (error) {
    failed = true;
    try {
      closeFile();
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
});
