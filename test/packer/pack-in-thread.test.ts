// A bundle writer packing on the calling thread (`inThread`, the app layer's) gives the bytes
// the worker gives, and fails the same way, leaving nothing behind.

import { readFile, readdir, symlink, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openBundleWriter, type BundleEntry } from "../../packer/index.js";
import type { EnvpackEvent } from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

async function entriesIn(dir: string): Promise<BundleEntry[][]> {
  await mkdir(join(dir, "lib"), { recursive: true });
  await writeFile(join(dir, "lib", "a.js"), "module.exports = 1;\n");
  await writeFile(join(dir, "big.bin"), Buffer.alloc(3 << 20, 7));
  await symlink("a.js", join(dir, "lib", "link.js"));
  return [
    [{ path: "big.bin", type: "file", source: join(dir, "big.bin") }],
    [
      { path: "app/lib/a.js", type: "file", source: join(dir, "lib", "a.js") },
      { path: "app/run", type: "file", data: Buffer.from("#!/bin/sh\n") },
      {
        path: `deep/${"n".repeat(120)}.txt`,
        type: "file",
        data: Buffer.from("x"),
      },
      { path: "app/lib/link.js", type: "symlink", linkTarget: "a.js" },
      { path: "empty", type: "directory" },
    ],
  ];
}

async function write(
  batches: BundleEntry[][],
  inThread: boolean,
  onEvent?: (event: EnvpackEvent) => void,
) {
  const outDir = await tempDir();
  const writer = openBundleWriter({ outDir, inThread, onEvent });
  try {
    for (const batch of batches) writer.add(batch);
    return { outDir, written: await writer.finish() };
  } finally {
    await writer.abort();
  }
}

describe("openBundleWriter inThread", () => {
  it("writes the bytes the packing worker writes, with progress", async () => {
    const batches = await entriesIn(await tempDir());
    const events: EnvpackEvent[] = [];
    const inThread = await write(batches, true, (e) => events.push(e));
    const worker = await write(batches, false);
    expect(inThread.written.digest).toBe(worker.written.digest);
    expect(await readFile(inThread.written.path)).toEqual(
      await readFile(worker.written.path),
    );
    expect(events.at(-1)).toMatchObject({
      type: "build:progress",
      files: 4,
    });
  });

  it("writes the same bytes again with the zstd context an earlier bundle here used", async () => {
    const batches = await entriesIn(await tempDir());
    const other: BundleEntry[][] = [
      [{ path: "other.txt", type: "file", data: Buffer.alloc(5000, 3) }],
    ];
    const first = await write(batches, true);
    const between = await write(other, true);
    const again = await write(batches, true);
    expect(again.written.digest).toBe(first.written.digest);
    expect((await write(other, false)).written.digest).toBe(
      between.written.digest,
    );
  });

  it("fails on a missing source with its code, and leaves nothing", async () => {
    const outDir = await tempDir();
    const writer = openBundleWriter({ outDir, inThread: true });
    writer.add([{ path: "gone", type: "file", source: join(outDir, "nope") }]);
    await expect(writer.finish()).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readdir(outDir)).toEqual([]);
  });

  it("fails with the file system's code when its output directory cannot be made, in thread or not", async () => {
    const base = await tempDir();
    await writeFile(join(base, "file"), "not a directory");
    for (const inThread of [true, false]) {
      const writer = openBundleWriter({
        outDir: join(base, "file", "out"),
        inThread,
      });
      writer.add([{ path: "a", type: "file", data: Buffer.from("a") }]);
      await expect(writer.finish()).rejects.toMatchObject({
        code: "ENOTDIR",
        syscall: "mkdir",
      });
      await writer.abort();
    }
    expect(await readdir(base)).toEqual(["file"]);
  });

  it("refuses an aborted signal between batches, and leaves nothing", async () => {
    const outDir = await tempDir();
    const controller = new AbortController();
    const writer = openBundleWriter({
      outDir,
      inThread: true,
      signal: controller.signal,
    });
    writer.add([{ path: "a", type: "file", data: Buffer.from("a") }]);
    controller.abort(new Error("stop"));
    await expect(writer.finish()).rejects.toThrow("stop");
    expect(await readdir(outDir)).toEqual([]);
  });

  it("abort during a finish resolves once that finish has settled: nothing is written after it", async () => {
    const outDir = await tempDir();
    let settled = false;
    let aborted!: (abort: Promise<void>) => void;
    // Resolves when the abort does (a promise resolved with a promise follows it).
    const aborting = new Promise<void>((resolve) => (aborted = resolve));
    const writer = openBundleWriter({
      outDir,
      inThread: true,
      // The last progress event comes as the packer ends the frame, before the temp is committed.
      onEvent: (e) => {
        if (e.type === "build:progress" && e.total > 0) aborted(writer.abort());
      },
    });
    writer.add([{ path: "a", type: "file", data: Buffer.alloc(1 << 16, 1) }]);
    const finishing = writer
      .finish()
      .then(
        (written) => ({ written }),
        (error: unknown) => ({ error }),
      )
      .finally(() => (settled = true));
    await aborting;
    expect(settled).toBe(true);
    const outcome = await finishing;
    // Committed before the abort reached it, or removed: never a temp.
    expect(await readdir(outDir)).toEqual(
      "written" in outcome
        ? [outcome.written.path.slice(outDir.length + 1)]
        : [],
    );
  });
});
