// Builds raw (possibly hostile) tar and tar.zst archives in code, header by header, and holds the
// one table of hostile bundles that both unpackers (unpackBundle and runtime/envpack-run) must
// treat alike: the unpack contract of the README, case by case.

import { execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { Header } from "tar";
import { CompressStream, compress } from "zstd-napi";

/** One raw tar member, written exactly as given: no path or link sanitising. */
export interface RawMember {
  path: string;
  type:
    | "File"
    | "ContiguousFile"
    | "Directory"
    | "SymbolicLink"
    | "Link"
    | "CharacterDevice"
    | "BlockDevice"
    | "FIFO";
  data?: string;
  linkpath?: string;
  /** Defaults to 0755 for directories, 0644 otherwise. */
  mode?: number;
}

function header(member: RawMember, size: number): Buffer {
  const block = Buffer.alloc(512);
  new Header({
    path: member.path,
    type: member.type,
    mode: member.mode ?? (member.type === "Directory" ? 0o755 : 0o644),
    size,
    mtime: new Date(Date.UTC(2000, 0, 1)),
    linkpath: member.linkpath,
    uid: 0,
    gid: 0,
  }).encode(block, 0);
  return block;
}

/**
 * An uncompressed tar holding exactly these members, in this order. node-tar's `Header` encodes
 * each 512-byte header (so checksums are right); nothing refuses `..`, absolute paths or devices.
 */
export function rawTar(members: RawMember[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const data = Buffer.from(member.data ?? "");
    const hasData = member.type === "File" || member.type === "ContiguousFile";
    blocks.push(header(member, hasData ? data.length : 0));
    if (hasData && data.length > 0) {
      blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The same, zstd-compressed, as a bundle is. */
export function rawBundle(members: RawMember[]): Buffer {
  return compress(rawTar(members));
}

/** A well-formed zstd stream whose tar content stops in the middle of a file's data. */
export function truncatedTarBundle(members: RawMember[]): Buffer {
  const tar = rawTar(members);
  return compress(tar.subarray(0, Math.floor(tar.length / 2)));
}

/** A well-formed zstd stream whose first tar header fails its checksum (one byte flipped). */
export function badChecksumBundle(members: RawMember[]): Buffer {
  const tar = rawTar(members);
  tar[0] = (tar[0] ?? 0) ^ 0x01;
  return compress(tar);
}

/** A valid bundle cut in the middle of its zstd frame. */
export function truncatedZstdBundle(members: RawMember[]): Buffer {
  const whole = rawBundle(members);
  return whole.subarray(0, Math.floor(whole.length / 2));
}

/**
 * Writes to `file` a bundle holding one zero-filled file `name` of `size` bytes, streamed (the
 * tar is never in memory): a few hundred KB that decompress to `size`.
 */
export async function writeZeroFileBundle(
  file: string,
  name: string,
  size: number,
): Promise<void> {
  const chunk = Buffer.alloc(1 << 20);
  async function* tar(): AsyncGenerator<Buffer> {
    yield header({ path: name, type: "File" }, size);
    for (let left = size; left > 0; left -= chunk.length)
      yield left >= chunk.length ? chunk : chunk.subarray(0, left);
    yield Buffer.alloc((512 - (size % 512)) % 512);
    yield Buffer.alloc(1024);
  }
  await pipeline(
    Readable.from(tar()),
    new CompressStream({ compressionLevel: 1 }),
    createWriteStream(file),
  );
}

/**
 * A tar made by GNU tar itself holding `sp`, a 10 MiB file that is one hole and 3 bytes, stored
 * sparse: `gnu` as an old GNU `S` entry, `pax` with GNU.sparse.* pax records (format 1.0, where
 * the stored name is `GNUSparseFile.<pid>/sp`).
 */
export async function gnuSparseBundle(
  scratch: string,
  format: "gnu" | "pax",
): Promise<Buffer> {
  await mkdir(scratch, { recursive: true });
  const sparse = join(scratch, "sp");
  await writeFile(sparse, "");
  await truncate(sparse, 10 << 20);
  await writeFile(sparse, "end", { flag: "a" });
  const tarFile = join(scratch, "sparse.tar");
  await promisify(execFile)("tar", [
    "--sparse",
    `--format=${format === "gnu" ? "gnu" : "posix"}`,
    ...(format === "pax" ? ["--sparse-version=1.0"] : []),
    "-cf",
    tarFile,
    "-C",
    scratch,
    "sp",
  ]);
  return compress(await readFile(tarFile));
}

/** Where a case's bundle may aim: `outside` is a directory beside the target that must stay empty. */
export interface HostileArena {
  /** A scratch directory for building the bundle. */
  scratch: string;
  outside: string;
}

/** One row of the hostile-archive table. */
export interface HostileCase {
  name: string;
  /** Writes the bundle's bytes to `file`. */
  write: (file: string, arena: HostileArena) => Promise<void>;
  /** The error code both unpackers give, or "none" when the bundle unpacks. */
  code: string;
  /**
   * The entry both name in the error; undefined when not compared (corrupt archives, and pax
   * sparse files, which node-tar sees under their stored name and GNU tar under their real one).
   */
  entry?: string | ((arena: HostileArena) => string);
  /** The bundle is checked against a digest that is not its own. */
  wrongDigest?: boolean;
  /** Files of this size (bytes) the unpacked tree holds, by path, when it unpacks. */
  sizes?: Record<string, number>;
}

export const UNSAFE = "ENVPACK_INTEGRITY_UNSAFE_ENTRY";
export const CORRUPT = "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE";
export const MISMATCH = "ENVPACK_INTEGRITY_DIGEST_MISMATCH";

/** Two GiB: the compressible entry whose unpack must not hold its bytes in memory. */
export const TWO_GIB = 2 ** 31;

const file = (path: string, data = "x"): RawMember => ({
  path,
  type: "File",
  data,
});
const members =
  (list: RawMember[] | ((arena: HostileArena) => RawMember[])) =>
  async (target: string, arena: HostileArena) =>
    writeFile(
      target,
      rawBundle(typeof list === "function" ? list(arena) : list),
    );
const bytes = (data: Buffer) => async (target: string) =>
  writeFile(target, data);
const twoFiles = [
  file("a.txt", "y".repeat(100_000)),
  file("b.txt", "z".repeat(100_000)),
];

/** The unpack contract as a table: every row holds for unpackBundle and for envpack-run. */
export const HOSTILE_CASES: HostileCase[] = [
  {
    name: "a clean bundle with a directory, a file, symlinks and a hardlink (control case)",
    write: members([
      { path: "a", type: "Directory" },
      file("a/b.txt"),
      { path: "a/l", type: "SymbolicLink", linkpath: "b.txt" },
      { path: "a/up", type: "SymbolicLink", linkpath: "../a/b.txt" },
      { path: "h", type: "Link", linkpath: "a/b.txt" },
    ]),
    code: "none",
    sizes: { "a/b.txt": 1, h: 1 },
  },
  {
    name: "a contiguous file (type C), unpacked as a regular file",
    write: members([
      { path: "c.bin", type: "ContiguousFile", data: "contiguous" },
    ]),
    code: "none",
    sizes: { "c.bin": 10 },
  },
  {
    name: "names with spaces, quotes, arrows and a newline (the listing stays one line each)",
    write: members([
      file('a -> "b"', "arrow"),
      { path: "x y", type: "SymbolicLink", linkpath: 'a -> "b"' },
      { path: "h link to z", type: "Link", linkpath: 'a -> "b"' },
      file("new\nline", "nl"),
    ]),
    code: "none",
    sizes: { 'a -> "b"': 5, "x y": 5, "h link to z": 5, "new\nline": 2 },
  },
  {
    name: "an escaping symlink whose name looks like a listing arrow",
    write: members([
      { path: 'ok -> "x"', type: "SymbolicLink", linkpath: "../../outside" },
    ]),
    code: UNSAFE,
    entry: 'ok -> \"x\"',
  },
  {
    name: "a ../ traversal",
    write: members([file("../../outside/evil.txt")]),
    code: UNSAFE,
    entry: "../../outside/evil.txt",
  },
  {
    name: "a .. hidden inside a path (a/../../x)",
    write: members([file("a/../../outside/evil.txt")]),
    code: UNSAFE,
    entry: "a/../../outside/evil.txt",
  },
  {
    name: "an absolute name",
    write: members((a) => [file(join(a.outside, "abs.txt"))]),
    code: UNSAFE,
    entry: (a) => join(a.outside, "abs.txt"),
  },
  {
    name: "a symlink escaping the target, then a file written through it",
    write: members([
      { path: "link", type: "SymbolicLink", linkpath: "../../outside" },
      file("link/evil.txt"),
    ]),
    code: UNSAFE,
    entry: "link",
  },
  {
    name: "an absolute symlink",
    write: members([{ path: "etc", type: "SymbolicLink", linkpath: "/etc" }]),
    code: UNSAFE,
    entry: "etc",
  },
  {
    name: "a write through an in-bundle symlink that stays inside",
    write: members([
      { path: "d", type: "Directory" },
      { path: "l", type: "SymbolicLink", linkpath: "d" },
      file("l/x.txt"),
    ]),
    code: UNSAFE,
    entry: "l/x.txt",
  },
  {
    name: "a write through a symlink spelled ./l/x",
    write: members([
      { path: "d", type: "Directory" },
      { path: "l", type: "SymbolicLink", linkpath: "d" },
      file("./l/x.txt"),
    ]),
    code: UNSAFE,
    entry: "./l/x.txt",
  },
  {
    name: "a symlink lexically inside that escapes through another (l -> s/.., s -> .)",
    write: members([
      { path: "l", type: "SymbolicLink", linkpath: "s/.." },
      { path: "s", type: "SymbolicLink", linkpath: "." },
    ]),
    code: UNSAFE,
    entry: "l",
  },
  {
    name: "symlinks that loop",
    write: members([
      { path: "a", type: "SymbolicLink", linkpath: "b" },
      { path: "b", type: "SymbolicLink", linkpath: "a" },
    ]),
    code: UNSAFE,
    entry: "a",
  },
  {
    name: "an entry replacing a symlink",
    write: members([
      { path: "d", type: "Directory" },
      { path: "l", type: "SymbolicLink", linkpath: "d" },
      { path: "l", type: "Directory" },
    ]),
    code: UNSAFE,
    entry: "l",
  },
  {
    name: "a hardlink escaping the target",
    write: members([
      { path: "hl", type: "Link", linkpath: "../../outside/secret" },
    ]),
    code: UNSAFE,
    entry: "hl",
  },
  {
    name: "an absolute hardlink target",
    write: members([{ path: "hl", type: "Link", linkpath: "/etc/passwd" }]),
    code: UNSAFE,
    entry: "hl",
  },
  {
    name: "a hardlink to a file that is not in the bundle",
    write: members([{ path: "hl", type: "Link", linkpath: "missing.txt" }]),
    code: UNSAFE,
    entry: "hl",
  },
  {
    name: "a hardlink to a path that became a symlink",
    write: members([
      { path: "d", type: "Directory" },
      file("d/a"),
      { path: "d/a", type: "SymbolicLink", linkpath: "../x" },
      { path: "h", type: "Link", linkpath: "d/a" },
    ]),
    code: UNSAFE,
    entry: "h",
  },
  {
    name: "a hardlink to a directory",
    write: members([
      { path: "d", type: "Directory" },
      { path: "h", type: "Link", linkpath: "d" },
    ]),
    code: UNSAFE,
    entry: "h",
  },
  {
    name: "a character device",
    write: members([{ path: "tty", type: "CharacterDevice" }]),
    code: UNSAFE,
    entry: "tty",
  },
  {
    name: "a block device",
    write: members([{ path: "sda", type: "BlockDevice" }]),
    code: UNSAFE,
    entry: "sda",
  },
  {
    name: "a fifo",
    write: members([{ path: "pipe", type: "FIFO" }]),
    code: UNSAFE,
    entry: "pipe",
  },
  {
    name: "a setuid file",
    write: members([{ path: "su", type: "File", data: "#!", mode: 0o4755 }]),
    code: UNSAFE,
    entry: "su",
  },
  {
    name: "a setgid directory",
    write: members([{ path: "sg", type: "Directory", mode: 0o2755 }]),
    code: UNSAFE,
    entry: "sg",
  },
  {
    name: "a GNU sparse entry (old GNU S type)",
    write: async (target, a) =>
      writeFile(target, await gnuSparseBundle(join(a.scratch, "gnu"), "gnu")),
    code: UNSAFE,
    entry: "sp",
  },
  {
    name: "a GNU sparse file in pax records (GNU.sparse.*, format 1.0)",
    write: async (target, a) =>
      writeFile(target, await gnuSparseBundle(join(a.scratch, "pax"), "pax")),
    code: UNSAFE,
  },
  {
    name: "a truncated zstd stream",
    write: bytes(truncatedZstdBundle(twoFiles)),
    code: CORRUPT,
  },
  {
    name: "a tar cut inside a file (in a complete zstd stream)",
    write: bytes(truncatedTarBundle(twoFiles)),
    code: CORRUPT,
  },
  {
    name: "a tar header with a bad checksum",
    write: bytes(badChecksumBundle([file("a.txt")])),
    code: CORRUPT,
  },
  {
    name: "bytes that are not zstd",
    write: bytes(Buffer.from("this is not a bundle at all")),
    code: CORRUPT,
  },
  {
    name: "a file entry replacing a non-empty directory",
    write: members([{ path: "d", type: "Directory" }, file("d/f"), file("d")]),
    code: CORRUPT,
  },
  {
    name: "a hostile bundle whose digest is not the one expected (checked first)",
    write: members([file("../../outside/evil.txt")]),
    code: MISMATCH,
    wrongDigest: true,
  },
  {
    name: "a compressible 2 GiB entry",
    write: async (target) => writeZeroFileBundle(target, "zeros", TWO_GIB),
    code: "none",
    sizes: { zeros: TWO_GIB },
  },
];
