// @ts-check
// Writes the entries unpackBundle has read from an archive and checked (EntryGuard): directories,
// files and links, created with O_EXCL and O_NOFOLLOW so nothing that already exists is replaced
// or followed. Modes come from the archive (setuid, setgid and sticky bits dropped), less the
// umask; mtimes are not restored (a bundle's are all the same fixed date). Run on a worker thread
// for a large archive (unpack-worker.mjs), on the reading thread for a small one.

import {
  chmodSync,
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

/**
 * @typedef {{ k: "d", p: string, m: number } | { k: "f", p: string, m: number }
 *   | { k: "w", n: number } | { k: "e" } | { k: "s", p: string, t: string }
 *   | { k: "l", p: string, t: string }} Op
 *   Directory, open a file, write the next n bytes of the batch's data to it, close it, symlink
 *   (t: the link's text), hardlink (t: the bundle-relative path of a file written before).
 * @typedef {{ apply: (ops: Op[], data: Uint8Array) => void, close: () => void,
 *   seal: () => void }} OpApplier
 */

const CREATE =
  constants.O_WRONLY |
  constants.O_CREAT |
  constants.O_EXCL |
  constants.O_NOFOLLOW;

/** @param {string} path */
const parentOf = (path) => {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
};

/**
 * Applies operations under `root` (a new, empty directory). `apply` throws the file system's
 * error (with its errno `code`); `close` closes the file left open, if any. With `readOnly`,
 * files are created without write bits (their open descriptor still writes) and `seal` then
 * clears the write bits of every directory made, `root` included: a read-only tree without a
 * second walk over its files.
 * @param {string} root
 * @param {boolean} [readOnly]
 * @returns {OpApplier}
 */
export function createOpApplier(root, readOnly = false) {
  const fileBits = readOnly ? 0o555 : 0o777;
  /** Directories known to exist, by bundle-relative path ("" is the root). */
  const made = new Set([""]);
  let fd = -1;

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

  const close = () => {
    if (fd < 0) return;
    const open = fd;
    fd = -1;
    closeSync(open);
  };

  /** @type {OpApplier["apply"]} */
  const apply = (ops, data) => {
    let at = 0;
    for (const op of ops) {
      switch (op.k) {
        case "d":
          ensureDir(op.p, op.m);
          break;
        case "f":
          close();
          ensureDir(parentOf(op.p));
          fd = openSync(join(root, op.p), CREATE, op.m & fileBits);
          break;
        case "w":
          for (let done = 0; done < op.n;)
            done += writeSync(fd, data, at + done, op.n - done);
          at += op.n;
          break;
        case "e":
          close();
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
  /** Clears the write bits of the directories made (as read-only-tree.ts's makeReadOnly). */
  const seal = () => {
    close();
    if (!readOnly) return;
    for (const dir of made) {
      const path = join(root, dir);
      chmodSync(path, lstatSync(path).mode & 0o7555);
    }
  };
  return { apply, close, seal };
}
