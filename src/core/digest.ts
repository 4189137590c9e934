// Content digests in the OCI form `sha256:<hex>`.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { pipeline } from "node:stream/promises";

/** A digest string `sha256:<64 hex>`. */
export type Digest = `sha256:${string}`;

/** Hex sha256 of bytes or a string (UTF-8). */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** `sha256:<hex>` of bytes or a string (UTF-8). */
export function digestOf(data: string | Uint8Array): Digest {
  return `sha256:${sha256Hex(data)}`;
}

/** Hex sha256 of a file's contents, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/** True for a well-formed `sha256:<64 lowercase hex>` string. */
export function isDigest(value: string): value is Digest {
  return /^sha256:[0-9a-f]{64}$/.test(value);
}

/** The `sha256:` digest and byte size of a file, streamed. */
export async function hashFile(
  path: string,
): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  // Two 1 MB buffers, reused: the next read runs on the thread pool while this one is hashed
  // (a read stream's fresh 64 KB chunk per read costs more in garbage than the hashing).
  const buffers = [
    Buffer.allocUnsafe(HASH_CHUNK),
    Buffer.allocUnsafe(HASH_CHUNK),
  ];
  const file = await open(path, "r");
  try {
    let turn = 0;
    let reading = file.read(buffers[0] as Buffer, 0, HASH_CHUNK, null);
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      turn ^= 1;
      reading = file.read(buffers[turn] as Buffer, 0, HASH_CHUNK, null);
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await file.close();
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

const HASH_CHUNK = 1 << 20;
