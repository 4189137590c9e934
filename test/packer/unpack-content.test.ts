// Every byte an unpack writes is the archive's, across the boundaries where the unpacker reuses
// buffers: compressed reads, zstd's two output buffers (node-tar keeps a view of a partial block
// until the next write), the writing thread's batches, and two layers sharing that thread.

import { createHash, randomBytes, randomInt } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ensureUnpacked,
  unpackBundle,
  writeBundle,
  writeBundleIndex,
  type BundleEntry,
} from "../../packer/index.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Files of random sizes and random (incompressible) bytes under `dir/<top>`, with their hashes. */
async function randomTree(
  dir: string,
  top: string,
  count: number,
): Promise<{ entries: BundleEntry[]; hashes: Map<string, string> }> {
  const entries: BundleEntry[] = [];
  const hashes = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    // Mostly small files (as in node_modules), some empty, every tenth one large.
    const size =
      i % 10 === 9 ? randomInt(200_000, 1_500_000) : randomInt(0, 20_000);
    const bytes = randomBytes(size);
    const path = `${top}/d${i % 7}/f${i}.bin`;
    const source = join(dir, `${top}-${i}.bin`);
    await writeFile(source, bytes);
    entries.push({ path, type: "file", source });
    hashes.set(path, createHash("sha256").update(bytes).digest("hex"));
  }
  return { entries, hashes };
}

async function expectSameFiles(
  root: string,
  hashes: Map<string, string>,
): Promise<void> {
  const wrong: string[] = [];
  for (const [path, hash] of hashes) {
    const bytes = await readFile(join(root, path));
    if (createHash("sha256").update(bytes).digest("hex") !== hash)
      wrong.push(path);
  }
  expect(wrong).toEqual([]);
}

describe("unpacking writes every byte of the archive", () => {
  it("one archive of many files, several MB compressed (read in chunks, written by a thread)", async () => {
    const src = await tempDir();
    const { entries, hashes } = await randomTree(src, "a", 400);
    const bundle = await writeBundle({ entries, outDir: await tempDir() });
    expect(bundle.size).toBeGreaterThan(8 * 1024 * 1024);
    const dest = join(await tempDir(), "env");
    await unpackBundle({
      file: bundle.path,
      dest,
      expectedDigest: bundle.digest,
    });
    await expectSameFiles(dest, hashes);
  });

  it("two layers unpacked side by side on one writing thread", async () => {
    const src = await tempDir();
    const out = await tempDir();
    const one = await randomTree(src, "one", 250);
    const two = await randomTree(src, "two", 250);
    const runtime = await writeBundle({ entries: one.entries, outDir: out });
    const packages = await writeBundle({ entries: two.entries, outDir: out });
    const index = await writeBundleIndex(
      {
        format: 3,
        kind: "node",
        layers: [
          { role: "runtime", digest: runtime.digest, size: runtime.size },
          { role: "packages", digest: packages.digest, size: packages.size },
        ],
      },
      out,
    );
    const envs = join(await tempDir(), "envs");
    await mkdir(envs);
    const { dir } = await ensureUnpacked({
      file: index.path,
      digest: index.digest,
      envsDir: envs,
    });
    await expectSameFiles(dir, new Map([...one.hashes, ...two.hashes]));
  });
});
