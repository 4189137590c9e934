// writeAtomic and friends (src/core/atomic-write.ts): readers never see a part, and nothing is
// left behind, whether the write succeeds or fails on a real file system.

import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  tempPathFor,
  writeAtomic,
  writeAtomicNamed,
  writeFileAtomic,
} from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

describe("writeFileAtomic", () => {
  it("replaces a file whole and leaves no temp, creating the directory", async () => {
    const dir = await tempDir();
    const path = join(dir, "sub", "out.json");
    await writeFileAtomic(path, "first");
    await writeFileAtomic(path, "second");
    expect(await readFile(path, "utf8")).toBe("second");
    expect(await readdir(join(dir, "sub"))).toEqual(["out.json"]);
  });

  it("keeps the old file and removes the temp when the rename fails", async () => {
    const dir = await tempDir();
    // A directory in the destination's place: the rename fails (EISDIR) after the temp is full.
    const path = join(dir, "taken");
    await mkdir(join(path, "inside"), { recursive: true });
    await expect(writeFileAtomic(path, "data")).rejects.toMatchObject({
      code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/),
    });
    expect(await readdir(dir)).toEqual(["taken"]);
  });
});

describe("writeAtomic", () => {
  it("removes a half-written temp when the filler fails, and keeps the old file", async () => {
    const dir = await tempDir();
    const path = join(dir, "blob");
    await writeFile(path, "old");
    let seen = "";
    const failure = new Error("the source broke");
    await expect(
      writeAtomic(path, async (temp) => {
        seen = temp;
        await writeFile(temp, "half");
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(seen.startsWith(join(dir, ".blob."))).toBe(true);
    expect(seen.endsWith(".tmp")).toBe(true);
    expect(await readdir(dir)).toEqual(["blob"]);
    expect(await readFile(path, "utf8")).toBe("old");
  });

  it("makes the temp in tempDir when given, and returns the filler's value", async () => {
    const dir = await tempDir();
    const temps = join(dir, "tmp");
    await mkdir(temps);
    const value = await writeAtomic(
      join(dir, "blobs", "x"),
      async (temp) => {
        expect(temp.startsWith(temps)).toBe(true);
        await writeFile(temp, "x");
        return 42;
      },
      { tempDir: temps, fsync: false },
    );
    expect(value).toBe(42);
    expect(await readFile(join(dir, "blobs", "x"), "utf8")).toBe("x");
    expect(await readdir(temps)).toEqual([]);
  });
});

describe("writeAtomicNamed", () => {
  it("names the file by what the filler returns", async () => {
    const dir = await tempDir();
    const result = await writeAtomicNamed(dir, async (temp) => {
      await writeFile(temp, "content");
      return { path: join(dir, "abc.tar.zst"), size: 7 };
    });
    expect(result.size).toBe(7);
    expect(await readdir(dir)).toEqual(["abc.tar.zst"]);
  });
});

describe("tempPathFor", () => {
  it("gives distinct hidden .tmp names beside the destination", () => {
    const a = tempPathFor("/x/y/file.json");
    const b = tempPathFor("/x/y/file.json");
    expect(a).not.toBe(b);
    expect(a).toMatch(/^\/x\/y\/\.file\.json\.\d+-[0-9a-f]{12}\.tmp$/);
  });
});
