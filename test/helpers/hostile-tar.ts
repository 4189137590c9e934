// Builds raw (possibly hostile) tar and tar.zst archives in code, header by header, for unpack tests.

import { Header } from "tar";
import { compress } from "zstd-napi";

/** One raw tar member, written exactly as given: no path or link sanitising. */
export interface RawMember {
  path: string;
  type:
    | "File"
    | "Directory"
    | "SymbolicLink"
    | "Link"
    | "CharacterDevice"
    | "BlockDevice"
    | "FIFO";
  data?: string;
  linkpath?: string;
}

/**
 * An uncompressed tar holding exactly these members, in this order. node-tar's `Header` encodes
 * each 512-byte header (so checksums are right); nothing refuses `..`, absolute paths or devices.
 */
export function rawTar(members: RawMember[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const data = Buffer.from(member.data ?? "");
    const header = new Header({
      path: member.path,
      type: member.type,
      mode: member.type === "Directory" ? 0o755 : 0o644,
      size: member.type === "File" ? data.length : 0,
      mtime: new Date(Date.UTC(2000, 0, 1)),
      linkpath: member.linkpath,
      uid: 0,
      gid: 0,
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (member.type === "File" && data.length > 0) {
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
