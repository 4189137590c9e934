// The pack worker's native file read (native/pack-read.c): what readFile answers, and the same
// bundle bytes whether the packer reads its files natively or in JavaScript.

import { randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createPacker } from "../../packer/pack-worker.mjs";
import type { BundleEntry } from "../../packer/index.js";
import { nativeStatFile } from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

type NativeRead = (
  path: string,
  buffer: Buffer,
  offset: number,
  room: number,
) => number;

const addonFile = nativeStatFile();

describe("native readFile", () => {
  it("is in the addon the build made", () => {
    expect(addonFile).not.toBeNull();
  });

  const readFile = (): NativeRead =>
    (
      createRequire(import.meta.url)(addonFile as string) as {
        readFile: NativeRead;
      }
    ).readFile;

  it("reads a file whole behind an offset, with its size and execute bit", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "plain"), "plain bytes");
    await writeFile(join(dir, "run"), "#!/bin/sh\n");
    await chmod(join(dir, "run"), 0o744);
    await writeFile(join(dir, "empty"), "");
    const buffer = Buffer.alloc(64);
    expect(readFile()(join(dir, "plain"), buffer, 8, 56)).toBe(11 * 2);
    expect(buffer.subarray(8, 19).toString()).toBe("plain bytes");
    expect(readFile()(join(dir, "run"), buffer, 0, 64)).toBe(10 * 2 + 1);
    expect(readFile()(join(dir, "empty"), buffer, 0, 64)).toBe(0);
  });

  it("answers -2 for a file as large as the room, -3 for one not its size, -1 otherwise", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "ten"), "0123456789");
    const buffer = Buffer.alloc(64);
    expect(readFile()(join(dir, "ten"), buffer, 0, 10)).toBe(-2);
    expect(readFile()(join(dir, "ten"), buffer, 0, 11)).toBe(20);
    // procfs says 0 bytes and has more.
    expect(readFile()("/proc/version", buffer, 0, 64)).toBe(-3);
    expect(readFile()(join(dir, "gone"), buffer, 0, 64)).toBe(-1);
    expect(readFile()(dir, buffer, 0, 64)).toBe(-1);
    // A room past the buffer's end is refused, not written.
    expect(readFile()(join(dir, "ten"), buffer, 60, 11)).toBe(-1);
  });

  it("packs the bytes the JavaScript read packs: small, empty, executable, long-named and stage-sized files", async () => {
    const dir = await tempDir();
    const entries: BundleEntry[] = [];
    const add = async (name: string, bytes: Buffer, mode = 0o644) => {
      await writeFile(join(dir, name), bytes);
      await chmod(join(dir, name), mode);
      entries.push({ path: name, type: "file", source: join(dir, name) });
    };
    await mkdir(join(dir, "d"));
    entries.push({ path: "d", type: "directory" });
    // Enough small files to cross the 1 MB stage several times, one near its size.
    for (let i = 0; i < 300; i++)
      await add(`d/f${String(i).padStart(3, "0")}`, randomBytes(i * 37));
    await add("d/g-empty", Buffer.alloc(0));
    await add("d/h-run", Buffer.from("#!/bin/sh\n"), 0o755);
    await add("d/i-stage", randomBytes((1 << 20) - 700));
    await add("d/j-large", randomBytes(3 << 20));
    await add(`d/${"k".repeat(120)}`, randomBytes(999));
    const pack = async (nativeAddon: string | null) => {
      const out = await tempDir();
      const packer = createPacker(
        {
          type: "start",
          temp: join(out, "bundle.tar.zst"),
          level: 3,
          threads: 1,
          mtimeMs: Date.UTC(2000, 0, 1),
          nativeAddon,
        },
        () => undefined,
      );
      try {
        packer.add(entries);
        return packer.finish().digest;
      } finally {
        packer.close();
      }
    };
    expect(await pack(addonFile)).toBe(await pack(null));
  });
});
