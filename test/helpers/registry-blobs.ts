// Test material for registry tests: bundle-sized random blobs with their entries, and errors
// caught as values.

import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hashFile, type Digest } from "../../src/core/index.js";
import type { PushEntry } from "../../src/registry/index.js";
import { tempDir } from "./temp-dir.js";

/** A new random input digest. */
export const someInput = (): Digest =>
  `sha256:${randomBytes(32).toString("hex")}`;

/** A file of `size` random bytes and the entry (this bundle format) that describes it. */
export async function blobFile(
  size = 3 * 1024 * 1024,
): Promise<{ file: string; entry: PushEntry }> {
  const file = join(await tempDir(), "bundle.tar.zst");
  await writeFile(file, randomBytes(size));
  const { digest } = await hashFile(file);
  return {
    file,
    entry: { digest, size, inputDigest: someInput(), meta: { format: "2" } },
  };
}

/** Calls `body` and returns what it threw. */
export async function caught(body: () => Promise<unknown>): Promise<unknown> {
  try {
    await body();
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}
