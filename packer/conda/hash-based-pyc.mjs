// @ts-check
// Byte code that stays valid after unpacking: a timestamp .pyc (PEP 3147 header: magic, flags 0,
// source mtime, source size) rewritten as an unchecked hash-based .pyc (PEP 552: flags 0b01 and
// the source's hash), the way importlib validates it. Plain JS: the pack worker imports it.

/**
 * SipHash rounds (compression, finalisation) of `importlib.util.source_hash` by magic number:
 * CPython keys SipHash-2-4 (3.7–3.10) or SipHash-1-3 (3.11 on, `_Py_KeyedHash`) with the magic
 * number. Only final releases checked against their interpreter are listed; byte code of any
 * other magic is left as it is.
 * @type {ReadonlyMap<number, readonly [number, number]>}
 */
const ROUNDS = new Map([
  [3394, [2, 4]], // 3.7
  [3413, [2, 4]], // 3.8
  [3425, [2, 4]], // 3.9
  [3439, [2, 4]], // 3.10
  [3495, [1, 3]], // 3.11
  [3531, [1, 3]], // 3.12
  [3571, [1, 3]], // 3.13
]);

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";

/** Size of the header every .pyc since Python 3.7 starts with. */
export const PYC_HEADER_SIZE = 16;

/**
 * What a .pyc header says, or undefined for one whose hash envpack cannot compute (not a 16-byte
 * header, not a `\r\n` magic, or a magic not in the table above).
 * @param {Uint8Array} header at least the first 16 bytes of the file
 * @returns {{ hashBased: boolean, mtime: number, size: number } | undefined}
 */
export function readPycHeader(header) {
  if (header.length < PYC_HEADER_SIZE || header[2] !== 13 || header[3] !== 10)
    return undefined;
  const view = new DataView(header.buffer, header.byteOffset, PYC_HEADER_SIZE);
  if (!ROUNDS.has(view.getUint16(0, true))) return undefined;
  const flags = view.getUint32(4, true);
  return {
    hashBased: flags !== 0,
    mtime: view.getUint32(8, true),
    size: view.getUint32(12, true),
  };
}

/** {@link settlePyc}'s verdict for byte code that cannot be used once unpacked: leave it out. */
export const OMIT = "omit";
/** {@link settlePyc}'s verdict when the source changed while it was read: the packing fails. */
export const CHANGED = "changed";

/**
 * A source read whole to settle byte code, handed to the packer so it packs these bytes rather
 * than read the file again: the bytes hashed and the file's `st_mode`.
 * @typedef {{ bytes: Uint8Array, mode: number }} ReadSource
 */

/**
 * How the byte code open as `fd` (of `size` bytes, read from position 0 later) is packed, given
 * the mark the planner put on it by path alone (see settle-byte-code.ts): the 16-byte header of
 * an unchecked hash-based .pyc (PEP 552) to pack in place of its own, for a timestamp .pyc of a
 * known magic whose header names `pyc.source`'s mtime and size as importlib checks them; `OMIT`
 * for any other timestamp .pyc of a known magic (stale, or its source `rewritten` on unpack);
 * undefined (packed as it is) for hash-based byte code, an unknown magic or a short file;
 * `CHANGED` when the source changed size while it was read. Reads the header with a positioned
 * read, so `fd`'s position stays 0. With `keep`, a source read whole is given to it.
 * @param {number} fd
 * @param {number} size
 * @param {{ source: string, rewritten?: boolean | undefined }} pyc
 * @param {((source: string, read: ReadSource) => void) | undefined} [keep]
 * @returns {Uint8Array | typeof OMIT | typeof CHANGED | undefined}
 */
export function settlePyc(fd, size, pyc, keep) {
  if (size < PYC_HEADER_SIZE) return undefined;
  const head = Buffer.alloc(PYC_HEADER_SIZE);
  for (let at = 0; at < PYC_HEADER_SIZE;) {
    const got = readSync(fd, head, at, PYC_HEADER_SIZE - at, at);
    // Shorter than its size: the packing that follows finds the change.
    if (got === 0) return undefined;
    at += got;
  }
  const header = readPycHeader(head);
  if (header === undefined || header.hashBased) return undefined;
  if (pyc.rewritten === true) return OMIT;
  const stamp = sourceStamp(
    pyc.source,
    head.readUInt32LE(0),
    keep !== undefined,
  );
  if (stamp === undefined) return CHANGED;
  if (keep !== undefined && stamp.read !== undefined)
    keep(pyc.source, stamp.read);
  if (stamp.mtime !== header.mtime || stamp.length % 2 ** 32 !== header.size)
    return OMIT;
  head.writeUInt32LE(0b01, 4);
  head.set(stamp.hash, 8);
  return head;
}

/**
 * What importlib compares and hashes of the source file `path` for byte code of `magic`: its
 * mtime as the header holds it (`int(st_mtime)`, st_mtime a double made from seconds and
 * nanoseconds as os.stat makes it, modulo 2**32), its length and `source_hash` of its bytes, and
 * with `withBytes` the bytes hashed and the file's mode; undefined when its size changed while it
 * was read.
 * @param {string} path
 * @param {number} magic
 * @param {boolean} withBytes
 * @returns {{ mtime: number, length: number, hash: Uint8Array, read?: ReadSource } | undefined}
 */
function sourceStamp(path, magic, withBytes) {
  const rounds = ROUNDS.get(magic & 0xffff);
  if (rounds === undefined)
    throw new Error(`no source hash known for magic ${magic & 0xffff}`);
  const native = nativeAddon()?.sourceHash(
    path,
    magic,
    rounds[0],
    rounds[1],
    withBytes,
  );
  // An addon older than its answer's third field answers 16 bytes: JavaScript then. One older
  // than the bytes answers 24 bytes when asked for them: the stamp without them.
  if (native !== undefined && native.length >= 24) {
    const length = Number(native.readBigUInt64LE(8));
    const stamp = {
      hash: native.subarray(0, 8),
      length,
      mtime: native.readUInt32LE(16),
    };
    return withBytes && native.length === 32 + length
      ? {
          ...stamp,
          read: { bytes: native.subarray(32), mode: native.readUInt32LE(24) },
        }
      : stamp;
  }
  const fd = openSync(path, "r");
  try {
    const st = fstatSync(fd, { bigint: true });
    const bytes = readWhole(fd);
    if (BigInt(bytes.length) !== st.size) return undefined;
    const seconds = Math.trunc(
      Number(st.mtimeNs / 1_000_000_000n) +
        Number(st.mtimeNs % 1_000_000_000n) * 1e-9,
    );
    return {
      hash: sourceHash(bytes, magic),
      length: bytes.length,
      mtime: ((seconds % 2 ** 32) + 2 ** 32) % 2 ** 32,
      // A copy: `bytes` is the scratch buffer the next read reuses.
      ...(withBytes
        ? { read: { bytes: Buffer.from(bytes), mode: Number(st.mode) } }
        : {}),
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * The pack thread's part of the addon: native/source-hash.c's sourceHash, and native/pack-read.c's
 * readFile (absent from an older addon).
 * @typedef {{ sourceHash(path: string, key: number, c: number, d: number,
 *   withBytes?: boolean): Buffer | undefined,
 *   readFile?: (path: string, buffer: Buffer, offset: number, room: number) => number
 * }} PackAddon
 */
/** The addon file {@link useNativeAddon} named, and the addon once loaded (null: none). */
/** @type {string | null} */
let addonFile = null;
/** @type {PackAddon | null | undefined} */
let addon = null;

/**
 * Names envpack's native addon (native/source-hash.c reads and hashes a source ten times faster
 * than the JavaScript below) for this thread's source hashes and reads: the file src/core/native-stat.ts
 * loaded and checked on the main thread (`nativeStatFile()`, posted with each bundle), or null
 * to hash in JavaScript. Loaded on first use.
 * @param {string | null} file
 */
export function useNativeAddon(file) {
  if (file === addonFile) return;
  addonFile = file;
  addon = file === null ? null : undefined;
}

/**
 * The addon {@link useNativeAddon} named, loaded once; null without one.
 * @returns {PackAddon | null}
 */
export function nativeAddon() {
  if (addon === undefined)
    addon = /** @type {PackAddon} */ (
      createRequire(import.meta.url)(/** @type {string} */ (addonFile))
    );
  return addon;
}

/** Sources are read into one buffer that grows as needed: a new one per file cost more than the hashing. */
let scratch = Buffer.alloc(0);

/**
 * The bytes of the open file `fd` from its position on, in {@link scratch} (valid until the next
 * call).
 * @param {number} fd
 */
function readWhole(fd) {
  for (let n = 0; ;) {
    if (n === scratch.length) {
      const grown = Buffer.allocUnsafe(Math.max(1 << 16, 2 * n));
      scratch.copy(grown, 0, 0, n);
      scratch = grown;
    }
    const got = readSync(fd, scratch, n, scratch.length - n, null);
    if (got === 0) return scratch.subarray(0, n);
    n += got;
  }
}

/**
 * `importlib.util.source_hash(bytes)` of the interpreter whose magic number (the .pyc's first four
 * bytes, little-endian) is `magic`: SipHash keyed by (magic, 0), little-endian.
 * @param {Uint8Array} bytes
 * @param {number} magic
 * @returns {Uint8Array} 8 bytes
 */
export function sourceHash(bytes, magic) {
  const rounds = ROUNDS.get(magic & 0xffff);
  if (rounds === undefined)
    throw new Error(`no source hash known for magic ${magic & 0xffff}`);
  return sipHash(bytes, magic >>> 0, 0, rounds[0], rounds[1]);
}

/**
 * SipHash-c-d of `bytes` with the 64-bit keys k0 = `k0lo` and k1 = `k1lo` (high halves 0), as 8
 * little-endian bytes. The state lives in locals as (high, low) unsigned 32-bit halves, one round
 * body for both phases: a typed-array state or a round function cost V8 1.4–2× the time.
 * @param {Uint8Array} bytes
 * @param {number} k0lo
 * @param {number} k1lo
 * @param {number} c compression rounds
 * @param {number} d finalisation rounds
 * @returns {Uint8Array}
 */
export function sipHash(bytes, k0lo, k1lo, c, d) {
  let v0h = 0x736f6d65,
    v0l = (0x70736575 ^ k0lo) >>> 0,
    v1h = 0x646f7261,
    v1l = (0x6e646f6d ^ k1lo) >>> 0,
    v2h = 0x6c796765,
    v2l = (0x6e657261 ^ k0lo) >>> 0,
    v3h = 0x74656462,
    v3l = (0x79746573 ^ k1lo) >>> 0,
    t = 0;
  const n = bytes.length;
  const whole = n - (n % 8);
  const words = new DataView(bytes.buffer, bytes.byteOffset, n);
  // Each word (the last one holds the remaining bytes and the length's low byte on top), then
  // one more pass for the finalisation.
  for (let at = 0; at <= whole + 8; at += 8) {
    let mh = 0;
    let ml = 0;
    let rounds = c;
    if (at < whole) {
      ml = words.getUint32(at, true);
      mh = words.getUint32(at + 4, true);
    } else if (at === whole) {
      mh = (n & 0xff) << 24;
      for (let i = whole; i < n; i++) {
        const shift = (i - whole) * 8;
        const byte = words.getUint8(i);
        if (shift < 32) ml |= byte << shift;
        else mh |= byte << (shift - 32);
      }
    } else {
      v2l = (v2l ^ 0xff) >>> 0;
      rounds = d;
    }
    ml >>>= 0;
    mh >>>= 0;
    v3h = (v3h ^ mh) >>> 0;
    v3l = (v3l ^ ml) >>> 0;
    for (let r = 0; r < rounds; r++) {
      // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
      t = (v0l + v1l) >>> 0;
      v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      t = ((v1h << 13) | (v1l >>> 19)) >>> 0;
      v1l = (((v1l << 13) | (v1h >>> 19)) ^ v0l) >>> 0;
      v1h = (t ^ v0h) >>> 0;
      t = v0h;
      v0h = v0l;
      v0l = t;
      // v2 += v3; v3 <<<= 16; v3 ^= v2
      t = (v2l + v3l) >>> 0;
      v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      t = ((v3h << 16) | (v3l >>> 16)) >>> 0;
      v3l = (((v3l << 16) | (v3h >>> 16)) ^ v2l) >>> 0;
      v3h = (t ^ v2h) >>> 0;
      // v0 += v3; v3 <<<= 21; v3 ^= v0
      t = (v0l + v3l) >>> 0;
      v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0;
      v0l = t;
      t = ((v3h << 21) | (v3l >>> 11)) >>> 0;
      v3l = (((v3l << 21) | (v3h >>> 11)) ^ v0l) >>> 0;
      v3h = (t ^ v0h) >>> 0;
      // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
      t = (v2l + v1l) >>> 0;
      v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0;
      v2l = t;
      t = ((v1h << 17) | (v1l >>> 15)) >>> 0;
      v1l = (((v1l << 17) | (v1h >>> 15)) ^ v2l) >>> 0;
      v1h = (t ^ v2h) >>> 0;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    v0h = (v0h ^ mh) >>> 0;
    v0l = (v0l ^ ml) >>> 0;
  }
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, (v0l ^ v1l ^ v2l ^ v3l) >>> 0, true);
  view.setUint32(4, (v0h ^ v1h ^ v2h ^ v3h) >>> 0, true);
  return out;
}
