// @ts-check
// The tar headers of one archive, byte for byte as node-tar's Header (and Pax) encode them, at a
// fraction of the cost: a Header object per entry cost more than reading its file. The fields
// every entry of a kind shares come from a block node-tar itself encoded once; per entry only the
// name, the size, the link name and the checksum are written. Anything outside the common case
// (a name of 100 bytes or more, text that is not ASCII, a size past ten octal digits) is encoded
// by node-tar, which stays the reference (test/packer/tar-header.test.ts holds the two equal).

// The two modules alone, not the package's index: the worker boots about 40 ms sooner.
import { Header } from "tar/header";
import { Pax } from "tar/pax";

/**
 * @typedef {"File" | "Directory" | "SymbolicLink"} HeaderType
 * @typedef {{ path: string, type: HeaderType, mode: number, size: number,
 *   linkpath?: string | undefined }} HeaderFields
 */

const BLOCK = 512;
/** ustar field offsets and sizes (POSIX.1-1988): name, size, checksum, link name. */
const NAME_SIZE = 100;
const SIZE_AT = 124;
/** node-tar writes a size as ten octal digits, a space and a NUL (up to 8 GiB - 1). */
const SIZE_DIGITS = 10;
const CHECKSUM_AT = 148;
const CHECKSUM_SIZE = 8;
const LINK_AT = 157;
const LINK_SIZE = 100;
const LARGEST_SIZE = 8 ** SIZE_DIGITS - 1;
const DIGIT_ZERO = 0x30;
const SPACE = 0x20;
const NOT_ASCII = /[^\x00-\x7f]/;

/**
 * Sum of the bytes of an ASCII string (the checksum counts bytes).
 * @param {string} text
 */
function byteSum(text) {
  let sum = 0;
  for (let i = 0; i < text.length; i++) sum += text.charCodeAt(i);
  return sum;
}

/**
 * Whether an entry at `path` (a file or directory, no link name) has a header of one 512-byte
 * block, with no pax record before it, whatever its size up to 8 GiB.
 * @param {string} path
 */
export function isOneBlock(path) {
  return path.length < NAME_SIZE && !NOT_ASCII.test(path);
}

/**
 * A header encoder for the entries of one archive: every entry with mtime `mtime`, uid and gid 0
 * and empty user and group names, as pack-worker.mjs writes them. `encode(fields)` gives the
 * bytes that go before the entry's data (a pax record first, when node-tar needs one); the
 * buffer is reused by the next call.
 * @param {Date} mtime
 */
export function headerEncoder(mtime) {
  /**
   * Per type and mode: node-tar's block for an empty name, size 0 and no link name, and its
   * checksum base (the sum of its bytes, the checksum field counted as spaces, less the size
   * digits, which each entry writes).
   * @type {Map<string, { block: Buffer, base: number }>}
   */
  const templates = new Map();
  const block = Buffer.alloc(BLOCK);

  /** @param {HeaderType} type @param {number} mode */
  const templateOf = (type, mode) => {
    const key = `${type}:${mode}`;
    let template = templates.get(key);
    if (template === undefined) {
      const encoded = Buffer.alloc(BLOCK);
      nodeTarHeader({ path: "", type, mode, size: 0 }, mtime).encode(encoded);
      let base = CHECKSUM_SIZE * SPACE - SIZE_DIGITS * DIGIT_ZERO;
      for (let i = 0; i < BLOCK; i++)
        if (i < CHECKSUM_AT || i >= CHECKSUM_AT + CHECKSUM_SIZE)
          base += /** @type {number} */ (encoded[i]);
      template = { block: encoded, base };
      templates.set(key, template);
    }
    return template;
  };

  /** @param {HeaderFields} fields @returns {Buffer} */
  return (fields) => {
    const { path, linkpath, size } = fields;
    if (
      path.length >= NAME_SIZE ||
      NOT_ASCII.test(path) ||
      !(size >= 0 && size <= LARGEST_SIZE) ||
      (linkpath !== undefined &&
        (linkpath.length > LINK_SIZE || NOT_ASCII.test(linkpath)))
    )
      return encodeByNodeTar(fields, mtime);
    const template = templateOf(fields.type, fields.mode);
    block.set(template.block);
    block.write(path, 0, path.length, "latin1");
    const digits = size.toString(8).padStart(SIZE_DIGITS, "0");
    block.write(digits, SIZE_AT, SIZE_DIGITS, "latin1");
    let sum = template.base + byteSum(path) + byteSum(digits);
    if (linkpath !== undefined) {
      block.write(linkpath, LINK_AT, linkpath.length, "latin1");
      sum += byteSum(linkpath);
    }
    // Six octal digits, a space and a NUL, as node-tar writes it (a sum is below 8^6).
    block.write(
      `${sum.toString(8).padStart(6, "0")} \0`,
      CHECKSUM_AT,
      CHECKSUM_SIZE,
      "latin1",
    );
    return block;
  };
}

/**
 * node-tar's own encoding of an entry's header: a pax record first when the fields do not fit
 * a ustar header.
 * @param {HeaderFields} fields
 * @param {Date} mtime
 * @returns {Buffer}
 */
export function encodeByNodeTar(fields, mtime) {
  const header = nodeTarHeader(fields, mtime);
  const block = Buffer.alloc(BLOCK);
  header.encode(block);
  if (!header.needPax) return block;
  const { path, linkpath, size } = fields;
  return Buffer.concat([
    new Pax({ path, linkpath, size, mtime }).encode(),
    block,
  ]);
}

/**
 * @param {HeaderFields} fields
 * @param {Date} mtime
 */
function nodeTarHeader(fields, mtime) {
  return new Header({
    path: fields.path,
    type: fields.type,
    mode: fields.mode,
    size: fields.size,
    mtime,
    uid: 0,
    gid: 0,
    uname: "",
    gname: "",
    linkpath: fields.linkpath,
  });
}
