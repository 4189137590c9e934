// Builds raw (possibly hostile) tar.zst archives in code, header by header, for unpack tests.

import { Header } from "tar";
import { compress } from "zstd-napi";

/** One raw tar member. */
export interface RawMember {
  path: string;
  type:
    "File" | "Directory" | "SymbolicLink" | "Link" | "CharacterDevice" | "FIFO";
  data?: string;
  linkpath?: string;
}

/** An uncompressed tar holding exactly these members, in this order, with no sanitising. */
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
