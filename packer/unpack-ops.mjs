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

/**
 * Operation codes of a batch. A batch is `codes` (pairs of a code and its number: the mode of
 * DIR and FILE, the byte count of WRITE, 0 otherwise), `text` (the paths the operations name, in
 * order, each ended by a NUL: one for DIR and FILE, the path then the target for SYMLINK and
 * LINK) and `data` (the bytes of the WRITEs, in order). Archive paths never hold a NUL (the host
 * refuses them), and a batch costs two strings' and two buffers' worth to send, not an object per
 * operation.
 */
export const DIR = 0;
/** Open a new file (the one the WRITEs that follow go to). */
export const FILE = 1;
/** The next n bytes of the batch's data, to the file opened last. */
export const WRITE = 2;
/** Close the file opened last. */
export const END = 3;
/** A symlink: its path, then its text. */
export const SYMLINK = 4;
/** A hardlink: its path, then the bundle-relative path of a file written before it. */
export const LINK = 5;

/**
 * @typedef {{
 *   dir: (path: string, mode: number) => void,
 *   file: (path: string, mode: number) => void,
 *   write: (data: Uint8Array, at: number, length: number) => void,
 *   end: () => void,
 *   symlink: (path: string, target: string) => void,
 *   link: (path: string, target: string) => void,
 *   applyBatch: (codes: Int32Array, count: number, text: string, data: Uint8Array) => void,
 *   close: () => void,
 *   seal: () => void,
 * }} OpApplier
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
 * Applies operations under `root` (a new, empty directory), one by one or as a batch. Each
 * throws the file system's error (with its errno `code`); `close` closes the file left open, if
 * any. Paths are canonical bundle-relative paths (the host's EntryGuard checked them). With
 * `readOnly`, files are created without write bits (their open descriptor still writes) and
 * `seal` then clears the write bits of every directory made, `root` included: a read-only tree
 * without a second walk over its files.
 * @param {string} root
 * @param {boolean} [readOnly]
 * @returns {OpApplier}
 */
export function createOpApplier(root, readOnly = false) {
  const fileBits = readOnly ? 0o555 : 0o777;
  // Canonical relative paths joined by hand: path.join would only normalise them again.
  const prefix = root.endsWith("/") ? root : `${root}/`;
  /** @param {string} path */
  const under = (path) => (path === "" ? root : prefix + path);
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
      mkdirSync(under(dir), (mode & 0o777) | 0o700);
    } catch (error) {
      // A directory listed twice is fine; anything else in its place is a conflict.
      if (
        /** @type {NodeJS.ErrnoException} */ (error).code !== "EEXIST" ||
        !lstatSync(under(dir)).isDirectory()
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

  /** @type {OpApplier["dir"]} */
  const dir = (path, mode) => ensureDir(path, mode);
  /** @type {OpApplier["file"]} */
  const file = (path, mode) => {
    close();
    ensureDir(parentOf(path));
    fd = openSync(under(path), CREATE, mode & fileBits);
  };
  /** @type {OpApplier["write"]} */
  const write = (data, at, length) => {
    for (let done = 0; done < length;)
      done += writeSync(fd, data, at + done, length - done);
  };
  /** @type {OpApplier["symlink"]} */
  const symlink = (path, target) => {
    ensureDir(parentOf(path));
    symlinkSync(target, under(path));
  };
  /** @type {OpApplier["link"]} */
  const link = (path, target) => {
    ensureDir(parentOf(path));
    linkSync(under(target), under(path));
  };

  /** @type {OpApplier["applyBatch"]} */
  const applyBatch = (codes, count, text, data) => {
    let at = 0;
    let from = 0;
    const next = () => {
      const nul = text.indexOf("\0", from);
      const path = text.slice(from, nul);
      from = nul + 1;
      return path;
    };
    for (let i = 0; i < 2 * count; i += 2) {
      const n = /** @type {number} */ (codes[i + 1]);
      switch (codes[i]) {
        case DIR:
          dir(next(), n);
          break;
        case FILE:
          file(next(), n);
          break;
        case WRITE:
          write(data, at, n);
          at += n;
          break;
        case END:
          close();
          break;
        case SYMLINK:
          symlink(next(), next());
          break;
        case LINK:
          link(next(), next());
          break;
      }
    }
  };
  /** Clears the write bits of the directories made (as read-only-tree.ts's makeReadOnly). */
  const seal = () => {
    close();
    if (!readOnly) return;
    for (const path of made) {
      const full = under(path);
      chmodSync(full, lstatSync(full).mode & 0o7555);
    }
  };
  return {
    dir,
    file,
    write,
    end: close,
    symlink,
    link,
    applyBatch,
    close,
    seal,
  };
}
