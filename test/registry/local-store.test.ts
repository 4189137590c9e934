// The content-addressed store on a real temp directory.

import { spawnSync } from "node:child_process";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { digestOf, type Digest } from "../../src/core/index.js";
import { LocalStore, type IndexRecord } from "../../src/registry/index.js";
import { USE_RESOLUTION_MS } from "../../src/registry/local-store.js";
import { tempDir } from "../helpers/temp-dir.js";

async function blobFile(dir: string, content: string): Promise<string> {
  const path = join(dir, `in-${Math.random().toString(16).slice(2)}`);
  await writeFile(path, content);
  return path;
}

const input = (n: number) => digestOf(`input-${n}`);

/** The index record of input `n` (its key too) naming `blob`, used at 1 unless `fields` say. */
const recordOf = (
  n: number,
  blob: { digest: Digest; size: number },
  fields: Partial<IndexRecord> = {},
): IndexRecord => ({
  key: input(n),
  inputDigest: input(n),
  digest: blob.digest,
  size: blob.size,
  usedAt: 1,
  ...fields,
});

describe("LocalStore", () => {
  it("stores a file under its digest and indexes an input digest to it", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    const put = await store.putFile(await blobFile(dir, "hello"));
    expect(put.digest).toBe(digestOf("hello"));
    expect(await readFile(store.blobPath(put.digest), "utf8")).toBe("hello");
    await store.record(recordOf(1, put));
    expect(await store.lookup(input(1))).toMatchObject({ digest: put.digest });
    expect(await store.lookup(input(2))).toBeNull();
  });

  it("holds no records until one is recorded, whether or not its directory exists", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    expect(await store.holdsNoRecords()).toBe(true);
    const put = await store.putFile(await blobFile(dir, "hello"));
    expect(await store.holdsNoRecords()).toBe(true);
    await store.record(recordOf(1, put));
    expect(await store.holdsNoRecords()).toBe(false);
  });

  it("rejects bytes that do not match the expected digest and keeps nothing", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    await expect(
      store.putFile(await blobFile(dir, "evil"), digestOf("good")),
    ).rejects.toMatchObject({
      code: "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
    });
    expect(await store.list()).toEqual([]);
  });

  it("lets concurrent writers of the same blob both succeed, leaving one blob and no temp files", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    const files = await Promise.all(
      Array.from({ length: 6 }, () => blobFile(dir, "same bytes")),
    );
    const results = await Promise.all(files.map((f) => store.putFile(f)));
    expect(new Set(results.map((r) => r.digest)).size).toBe(1);
    expect(await readdir(join(dir, "store", "blobs", "sha256"))).toHaveLength(
      1,
    );
    expect(await readdir(join(dir, "store", "tmp"))).toEqual([]);
  });

  it("refuses to index a blob it does not hold", async () => {
    const store = new LocalStore(join(await tempDir(), "store"));
    await expect(
      store.record(recordOf(1, { digest: digestOf("x"), size: 1 })),
    ).rejects.toThrow();
    expect(await store.lookup(input(1))).toBeNull();
  });

  it("treats a corrupt index record as a miss", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    const put = await store.putFile(await blobFile(dir, "x"));
    await store.record(recordOf(1, put, { size: 1 }));
    const indexDir = join(dir, "store", "index", "sha256");
    const [name] = await readdir(indexDir);
    await writeFile(join(indexDir, name!), "{ truncated");
    expect(await store.lookup(input(1))).toBeNull();
  });

  it("an index record written before bundle keys (no key field) is never found, and remove deletes it", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    const put = await store.putFile(await blobFile(dir, "old bundle"));
    const indexDir = join(dir, "store", "index", "sha256");
    await mkdir(indexDir, { recursive: true });
    // The layout of a record keyed by the bare input digest.
    await writeFile(
      join(indexDir, `${input(1).slice(7)}.json`),
      JSON.stringify({
        inputDigest: input(1),
        digest: put.digest,
        size: put.size,
        usedAt: 1,
      }),
    );
    expect(await store.lookup(input(1))).toBeNull();
    expect(await store.list()).toMatchObject([
      { digest: put.digest, keys: [] },
    ]);
    expect(await store.remove(put.digest)).toBe(true);
    expect(await readdir(indexDir)).toEqual([]);
  });

  it("markUsed moves a record used a resolution later to the front of gc's order, and changes nothing else", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    // Later than the blobs' own mtimes, which list() also counts.
    const later = Date.now() + 1000_000;
    const records = [];
    for (let i = 0; i < 2; i++) {
      const put = await store.putFile(
        await blobFile(dir, `blob-${i}-`.padEnd(100, "x")),
      );
      const record = recordOf(i, put, {
        usedAt: later + i,
        meta: { builder: "test" },
      });
      await store.record(record);
      records.push(record);
    }
    // A use within the resolution of the recorded one is the same use: nothing is written.
    await store.markUsed(records[0]!, later + USE_RESOLUTION_MS - 1);
    expect(await store.lookup(input(0))).toEqual(records[0]);
    await store.markUsed(records[0]!, later + USE_RESOLUTION_MS);
    expect(await store.lookup(input(0))).toEqual({
      ...records[0],
      usedAt: later + USE_RESOLUTION_MS,
    });
    expect((await store.list()).map((b) => b.digest)).toEqual([
      records[0]!.digest,
      records[1]!.digest,
    ]);
    expect(await readdir(join(dir, "store", "tmp"))).toEqual([]);
  });

  it("gc removes least recently used blobs down to the size bound, with their index records", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    const digests: Digest[] = [];
    for (let i = 0; i < 3; i++) {
      const put = await store.putFile(
        await blobFile(dir, `blob-${i}-`.padEnd(100, "x")),
      );
      await store.record(
        recordOf(i, put, { usedAt: Date.now() + i * 1000_000 }),
      );
      digests.push(put.digest);
    }
    const result = await store.gc(150);
    expect(result.removed).toEqual([digests[0], digests[1]]);
    expect((await store.list()).map((b) => b.digest)).toEqual([digests[2]]);
    expect(await store.lookup(input(0))).toBeNull();
    await expect(store.gc(-1)).rejects.toMatchObject({
      code: "ENVPACK_USAGE_BAD_ARGUMENT",
    });
  });

  it("gc keeps a layer while a kept bundle lists it and removes it with the last one", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    const put = async (name: string) =>
      store.putFile(await blobFile(dir, name.padEnd(100, "x")));
    const shared = await put("layer-shared");
    const own = await put("layer-own");
    const bundle = async (
      n: number,
      layer: { digest: Digest; size: number },
    ) => {
      const index = await put(`index-${n}`);
      await store.record(
        recordOf(n, index, {
          usedAt: Date.now() + n * 1000_000,
          layers: [{ ...layer, role: "packages" }],
        }),
      );
      return index.digest;
    };
    const a = await bundle(1, shared);
    const b = await bundle(2, shared);
    const c = await bundle(3, own);
    // The layers' blobs are older than every bundle: they still go only with their bundles.
    const first = await store.gc(400);
    expect(first.removed).toEqual([a]);
    expect(await store.has(shared.digest)).toBe(true);
    const second = await store.gc(200);
    expect(second.removed).toEqual([b, shared.digest]);
    expect((await store.list()).map((blob) => blob.digest).sort()).toEqual(
      [c, own.digest].sort(),
    );
    expect(await store.lookup(input(3))).toMatchObject({ digest: c });
  });

  it("gc prunes records whose blob is gone and temps of writers that are gone", async () => {
    const dir = await tempDir();
    const store = new LocalStore(join(dir, "store"));
    const kept = await store.putFile(await blobFile(dir, "kept"));
    const lost = await store.putFile(await blobFile(dir, "lost"));
    for (const [n, blob] of [kept, lost].entries())
      await store.record(recordOf(n, blob, { usedAt: Date.now() }));
    await rm(store.blobPath(lost.digest));
    const tmp = join(dir, "store", "tmp");
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid as number;
    await writeFile(join(tmp, `.blob.${dead}-0a1b2c.tmp`), "partial");
    await writeFile(join(tmp, `.blob.${process.pid}-0a1b2c.tmp`), "writing");
    const result = await store.gc(1024);
    expect(result.removed).toEqual([]);
    expect((await readdir(join(dir, "store", "index", "sha256"))).length).toBe(
      1,
    );
    expect(await store.lookup(input(0))).toMatchObject({ digest: kept.digest });
    expect(await readdir(tmp)).toEqual([`.blob.${process.pid}-0a1b2c.tmp`]);
  });
});
