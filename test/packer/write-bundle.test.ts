// The deterministic bundle writer on real files, checked with our unpacker, node-tar's parser and
// the real zstd/tar that the worker-side runner uses.

import { createHash, randomBytes } from "node:crypto";
import {
  chmod,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { readdirSync, unlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { execa } from "execa";
import { Parser, type ReadEntry } from "tar";
import { describe, expect, it } from "vitest";
import { decompress } from "zstd-napi";
import {
  BUNDLE_MTIME,
  unpackBundle,
  openBundleWriter,
  writeBundle,
  type BundleEntry,
  type WrittenBundle,
} from "../../packer/index.js";
import type { EnvpackEvent } from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Longer than ustar's 100-byte name field and not splittable into its prefix: needs pax. */
const LONG_PATH = `deep/${"n".repeat(120)}.txt`;

/** A small source tree at `dir` with the given mtime and mode for the non-executable file. */
async function sourceTree(
  dir: string,
  mtime: Date,
  mode: number,
): Promise<BundleEntry[]> {
  await mkdir(join(dir, "lib"), { recursive: true });
  await writeFile(join(dir, "lib", "a.js"), "module.exports = 1;\n");
  await writeFile(join(dir, "run.sh"), "#!/bin/sh\necho ok\n");
  await writeFile(join(dir, "long.txt"), "long name\n");
  // A source reached through a link is read through it.
  await symlink(join(dir, "lib", "a.js"), join(dir, "via-link.js"));
  await chmod(join(dir, "lib", "a.js"), mode);
  await chmod(join(dir, "run.sh"), 0o755);
  for (const f of ["lib/a.js", "run.sh", "long.txt"])
    await utimes(join(dir, f), mtime, mtime);
  return [
    {
      path: "run.sh",
      type: "file",
      source: join(dir, "run.sh"),
      executable: true,
    },
    { path: "pkg/lib/a.js", type: "file", source: join(dir, "lib", "a.js") },
    { path: "pkg/lib/b.js", type: "file", source: join(dir, "via-link.js") },
    { path: "pkg/empty", type: "directory" },
    { path: "pkg/link", type: "symlink", linkTarget: "lib/a.js" },
    { path: LONG_PATH, type: "file", source: join(dir, "long.txt") },
    {
      path: ".envpack/meta.json",
      type: "file",
      data: Buffer.from('{"x":1}\n'),
    },
  ];
}

/** Every tar entry of a bundle, in archive order, as node-tar's parser reads it. */
async function readEntries(bundle: string): Promise<ReadEntry[]> {
  const entries: ReadEntry[] = [];
  const parser = new Parser({ strict: true });
  parser.on("entry", (entry: ReadEntry) => {
    entries.push(entry);
    entry.resume();
  });
  const ended = new Promise<void>((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
  });
  parser.end(decompress(await readFile(bundle)));
  await ended;
  return entries;
}

/** Peak RSS growth while `run` runs, sampled every few milliseconds. */
async function peakRssGrowth(run: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(
    () => (peak = Math.max(peak, process.memoryUsage().rss)),
    5,
  );
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage().rss) - before;
}

/**
 * `size` bytes, half random and half a repeated random block: compressible but not trivially.
 * Written block by block, so the test itself never holds the file in memory.
 */
async function pseudoRandomFile(path: string, size: number): Promise<void> {
  const block = randomBytes(1024 * 1024);
  const file = await open(path, "w");
  try {
    for (let i = 0; i < size / block.length; i++)
      await file.write(i % 2 ? block : randomBytes(block.length));
  } finally {
    await file.close();
  }
}

describe("writeBundle", () => {
  it("round-trips files, modes, symlinks, empty directories and long names", async () => {
    const src = await tempDir();
    const entries = await sourceTree(src, new Date(), 0o600);
    const written = await writeBundle({ entries, outDir: await tempDir() });

    const dest = join(await tempDir(), "unpacked");
    await unpackBundle({
      file: written.path,
      dest,
      expectedDigest: written.digest,
    });
    expect(await readFile(join(dest, "pkg", "lib", "a.js"), "utf8")).toBe(
      "module.exports = 1;\n",
    );
    expect(await readFile(join(dest, "pkg", "lib", "b.js"), "utf8")).toBe(
      "module.exports = 1;\n",
    );
    expect((await lstat(join(dest, "pkg", "lib", "b.js"))).isFile()).toBe(true);
    expect((await stat(join(dest, "pkg", "lib", "a.js"))).mode & 0o777).toBe(
      0o644,
    );
    expect((await stat(join(dest, "run.sh"))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(dest, "pkg", "link"))).toBe("lib/a.js");
    expect(await readdir(join(dest, "pkg", "empty"))).toEqual([]);
    expect(await readFile(join(dest, LONG_PATH), "utf8")).toBe("long name\n");
    expect(await readFile(join(dest, ".envpack", "meta.json"), "utf8")).toBe(
      '{"x":1}\n',
    );
  });

  it("names the file by the sha256 of its bytes and leaves nothing else in the output directory", async () => {
    const out = await tempDir();
    const entries = await sourceTree(await tempDir(), new Date(), 0o644);
    const written = await writeBundle({ entries, outDir: out });
    const bytes = await readFile(written.path);
    const hex = createHash("sha256").update(bytes).digest("hex");
    expect(written.digest).toBe(`sha256:${hex}`);
    expect(written.path).toBe(join(out, `${hex}.tar.zst`));
    expect(written.size).toBe(bytes.length);
    expect(await readdir(out)).toEqual([`${hex}.tar.zst`]);
  });

  it("writes normalised headers: sorted, parents first, fixed mtime, owner 0, fixed modes, pax only for long names", async () => {
    const entries = await sourceTree(await tempDir(), new Date(), 0o600);
    const written = await writeBundle({ entries, outDir: await tempDir() });
    const read = await readEntries(written.path);

    const paths = read.map((e) => e.path.replace(/\/$/, ""));
    expect(paths).toEqual([
      ".envpack",
      ".envpack/meta.json",
      "deep",
      LONG_PATH,
      "pkg",
      "pkg/empty",
      "pkg/lib",
      "pkg/lib/a.js",
      "pkg/lib/b.js",
      "pkg/link",
      "run.sh",
    ]);
    expect(written.entries).toBe(paths.length);
    const modes: Record<string, number> = {
      Directory: 0o755,
      SymbolicLink: 0o777,
    };
    for (const entry of read) {
      expect(entry.mtime).toEqual(BUNDLE_MTIME);
      expect([entry.uid, entry.gid]).toEqual([0, 0]);
      expect([entry.uname ?? "", entry.gname ?? ""]).toEqual(["", ""]);
      expect([entry.atime, entry.ctime]).toEqual([undefined, undefined]);
      expect(entry.mode).toBe(
        modes[entry.type] ?? (entry.path === "run.sh" ? 0o755 : 0o644),
      );
      // A pax record only where ustar cannot hold the name, and then with no host metadata.
      if (entry.path === LONG_PATH) {
        expect(entry.extended?.path).toBe(LONG_PATH);
        expect([entry.extended?.atime, entry.extended?.ctime]).toEqual([
          undefined,
          undefined,
        ]);
      } else {
        expect(entry.extended).toBeUndefined();
      }
    }
  });

  it("gives byte-identical bundles from other source paths, mtimes, modes, umask, entry order and thread counts", async () => {
    const a = await sourceTree(await tempDir(), new Date("2020-05-05"), 0o600);
    const b = await sourceTree(
      join(await tempDir(), "deeper", "path"),
      new Date(),
      0o664,
    );
    const previous = process.umask(0o077);
    let one: WrittenBundle;
    try {
      one = await writeBundle({
        entries: a,
        outDir: await tempDir(),
        threads: 1,
      });
    } finally {
      process.umask(previous);
    }
    const two = await writeBundle({
      entries: [...b].reverse(),
      outDir: await tempDir(),
      threads: 3,
    });
    const three = await writeBundle({ entries: b, outDir: await tempDir() });
    expect(two.digest).toBe(one.digest);
    expect(three.digest).toBe(one.digest);
    expect(await readFile(two.path)).toEqual(await readFile(one.path));
  });

  it("is listed and extracted by the real zstd and tar, as the worker-side runner does", async () => {
    const entries = await sourceTree(await tempDir(), new Date(), 0o644);
    const written = await writeBundle({ entries, outDir: await tempDir() });
    const { stdout } = await execa("sh", [
      "-c",
      'zstd -dc "$1" | tar -tf -',
      "sh",
      written.path,
    ]);
    expect(stdout.split("\n")).toEqual([
      ".envpack/",
      ".envpack/meta.json",
      "deep/",
      LONG_PATH,
      "pkg/",
      "pkg/empty/",
      "pkg/lib/",
      "pkg/lib/a.js",
      "pkg/lib/b.js",
      "pkg/link",
      "run.sh",
    ]);
    const dest = await tempDir();
    await execa("sh", [
      "-c",
      'zstd -dc "$1" | tar -xf - -C "$2"',
      "sh",
      written.path,
      dest,
    ]);
    expect(await readFile(join(dest, LONG_PATH), "utf8")).toBe("long name\n");
    expect(await readlink(join(dest, "pkg", "link"))).toBe("lib/a.js");
    expect((await stat(join(dest, "run.sh"))).mode & 0o111).not.toBe(0);
    expect((await stat(join(dest, "pkg", "empty"))).mtime).toEqual(
      BUNDLE_MTIME,
    );
  });

  it("leaves nothing in the output directory when the signal aborts mid-stream", async () => {
    const src = await tempDir();
    const out = await tempDir();
    await pseudoRandomFile(join(src, "one.bin"), 12 * 1024 * 1024);
    await pseudoRandomFile(join(src, "two.bin"), 12 * 1024 * 1024);
    const controller = new AbortController();
    const events: EnvpackEvent[] = [];
    let during: string[] = [];
    const writing = writeBundle({
      entries: [
        { path: "one.bin", type: "file", source: join(src, "one.bin") },
        { path: "two.bin", type: "file", source: join(src, "two.bin") },
      ],
      outDir: out,
      signal: controller.signal,
      onEvent: (event) => {
        events.push(event);
        // The first file is in the pipeline: the temp file exists when the abort lands.
        if (event.type === "build:progress" && event.bytes > 0) {
          during = readdirSync(out);
          controller.abort(new Error("stop"));
        }
      },
    });
    await expect(writing).rejects.toThrow("stop");
    expect(events.some((e) => e.type === "build:progress" && e.bytes > 0)).toBe(
      true,
    );
    expect(during).toEqual([expect.stringMatching(/\.tmp$/)]);
    expect(await readdir(out)).toEqual([]);
  });

  it("reports pack progress that ends with every byte of the total and every file", async () => {
    const src = await tempDir();
    await pseudoRandomFile(join(src, "big.bin"), 20 * 1024 * 1024);
    await writeFile(join(src, "small.txt"), "small\n");
    const events: Extract<EnvpackEvent, { type: "build:progress" }>[] = [];
    await writeBundle({
      entries: [
        { path: "big.bin", type: "file", source: join(src, "big.bin") },
        { path: "lib/small.txt", type: "file", source: join(src, "small.txt") },
        { path: "inline.txt", type: "file", data: Buffer.from("inline") },
      ],
      outDir: await tempDir(),
      onEvent: (event) => {
        if (event.type === "build:progress") events.push(event);
      },
    });
    const total = 20 * 1024 * 1024 + "small\n".length + "inline".length;
    // Reports inside the big file, then the end: all bytes of the total, three files.
    expect(
      events.filter((e) => e.bytes > 0 && e.bytes < total).length,
    ).toBeGreaterThan(0);
    expect(events.at(-1)).toEqual({
      type: "build:progress",
      phase: "pack",
      bytes: total,
      total,
      files: 3,
    });
    // The total is known once everything is packed (no stat of every file before the first byte).
    for (const e of events.slice(0, -1)) {
      expect(e.bytes).toBeLessThanOrEqual(total);
      expect(e.total).toBe(0);
    }
  });

  it("unpacking aborted mid-stream leaves neither the target nor its temp directory", async () => {
    const src = await tempDir();
    await pseudoRandomFile(join(src, "one.bin"), 12 * 1024 * 1024);
    await pseudoRandomFile(join(src, "two.bin"), 12 * 1024 * 1024);
    const written = await writeBundle({
      entries: [
        { path: "a/one.bin", type: "file", source: join(src, "one.bin") },
        { path: "b/two.bin", type: "file", source: join(src, "two.bin") },
      ],
      outDir: await tempDir(),
    });
    const parent = await tempDir();
    const controller = new AbortController();
    const unpacking = unpackBundle({
      file: written.path,
      dest: join(parent, "env"),
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === "build:progress" && event.bytes > 0)
          controller.abort(new Error("stop"));
      },
    });
    await expect(unpacking).rejects.toThrow("stop");
    expect(await readdir(parent)).toEqual([]);
  });

  it("leaves nothing in the output directory when a source disappears mid-stream", async () => {
    const src = await tempDir();
    const out = await tempDir();
    // Big enough that the writer is still on it when the first progress report is handled.
    await pseudoRandomFile(join(src, "one.bin"), 64 * 1024 * 1024);
    await pseudoRandomFile(join(src, "two.bin"), 12 * 1024 * 1024);
    let removed = false;
    let during: string[] = [];
    const writing = writeBundle({
      entries: [
        { path: "one.bin", type: "file", source: join(src, "one.bin") },
        { path: "two.bin", type: "file", source: join(src, "two.bin") },
      ],
      outDir: out,
      onEvent: (event) => {
        // The first report with bytes comes 8 MB into one.bin, after every source was stat'ed:
        // two.bin vanishes between its stat and its read.
        if (event.type === "build:progress" && event.bytes > 0 && !removed) {
          unlinkSync(join(src, "two.bin"));
          during = readdirSync(out);
          removed = true;
        }
      },
    });
    await expect(writing).rejects.toMatchObject({ code: "ENOENT" });
    expect(removed).toBe(true);
    expect(during).toEqual([expect.stringMatching(/\.tmp$/)]);
    expect(await readdir(out)).toEqual([]);
  });

  it("leaves nothing in the output directory when a source is missing from the start", async () => {
    const out = await tempDir();
    const src = await tempDir();
    await expect(
      writeBundle({
        entries: [{ path: "gone", type: "file", source: join(src, "gone") }],
        outDir: out,
      }),
    ).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readdir(out)).toEqual([]);
  });

  it("refuses unsafe or conflicting entry paths", async () => {
    const out = await tempDir();
    for (const path of ["../x", "/abs", "a/../../x"]) {
      await expect(
        writeBundle({ entries: [{ path, type: "directory" }], outDir: out }),
      ).rejects.toMatchObject({
        code: "ENVPACK_INPUT_MANIFEST_INVALID",
      });
    }
    await expect(
      writeBundle({
        entries: [
          { path: "a", type: "file", data: Buffer.from("1") },
          { path: "a/b", type: "file", data: Buffer.from("2") },
        ],
        outDir: out,
      }),
    ).rejects.toMatchObject({ code: "ENVPACK_INPUT_MANIFEST_INVALID" });
    expect(await readdir(out)).toEqual([]);
  });

  it("packs leading entries first (with their directories), whether they and the rest come now or later", async () => {
    const src = await tempDir();
    const all = await sourceTree(src, new Date(), 0o644);
    const leading = all.filter((e) => e.path.startsWith("pkg/lib/"));
    const rest = all.filter((e) => !e.path.startsWith("pkg/lib/"));

    const now = await writeBundle({ leading, entries: rest, outDir: src });
    let settle!: (entries: BundleEntry[]) => void;
    const later = writeBundle({
      leading: Promise.resolve(leading),
      entries: new Promise<BundleEntry[]>((resolve) => (settle = resolve)),
      outDir: await tempDir(),
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    settle(rest);
    expect((await later).digest).toBe(now.digest);

    const names = (await readEntries(now.path)).map((e) => e.path);
    expect(names.slice(0, 4)).toEqual([
      "pkg/",
      "pkg/lib/",
      "pkg/lib/a.js",
      "pkg/lib/b.js",
    ]);
    // The rest sorted, without the directories already packed.
    const tail = names.slice(4);
    expect(tail).toEqual([...tail].sort());
    expect(tail.filter((n) => n === "pkg/" || n === "pkg/lib/")).toEqual([]);
    expect(now.entries).toBe(names.length);
    // The split is part of the bytes.
    const unsplit = await writeBundle({
      entries: all,
      outDir: await tempDir(),
    });
    expect(unsplit.digest).not.toBe(now.digest);

    // A path in both parts is a conflict, found before the bundle is finished.
    const out = await tempDir();
    await expect(
      writeBundle({ leading, entries: [...rest, leading[0]!], outDir: out }),
    ).rejects.toMatchObject({ code: "ENVPACK_INPUT_MANIFEST_INVALID" });
    expect(await readdir(out)).toEqual([]);
  });

  it("streams a large file without holding the bundle in memory; the bytes do not depend on the thread count", async () => {
    const src = await tempDir();
    const big = join(src, "big.bin");
    // Large next to the writer's fixed overhead (the packing worker and zstd's job buffers:
    // 45-70 MB measured whatever the size), so the bound below means something.
    const size = 256 * 1024 * 1024;
    await pseudoRandomFile(big, size);
    const entries: BundleEntry[] = [
      { path: "big.bin", type: "file", source: big },
    ];
    let two: WrittenBundle | undefined;
    const growth = await peakRssGrowth(async () => {
      two = await writeBundle({ entries, outDir: await tempDir(), threads: 2 });
    });
    expect(two?.size).toBeGreaterThan(size / 2);
    expect(growth).toBeLessThan(size * 0.4);
    // Many zstd jobs long, so the workers really split it.
    const one = await writeBundle({
      entries,
      outDir: await tempDir(),
      threads: 1,
    });
    expect(one.digest).toBe(two?.digest);
  });
});

describe("openBundleWriter", () => {
  it("packs batches in order as writeBundle packs leading and rest, and refuses a conflict across batches", async () => {
    const src = await tempDir();
    const all = await sourceTree(src, new Date(), 0o644);
    const leading = all.filter((e) => e.path.startsWith("pkg/lib/"));
    const rest = all.filter((e) => !e.path.startsWith("pkg/lib/"));
    const viaWriteBundle = await writeBundle({
      leading,
      entries: rest,
      outDir: await tempDir(),
    });

    const out = await tempDir();
    const writer = openBundleWriter({ outDir: out });
    writer.add(leading);
    // A duplicate of the first batch is refused and changes nothing.
    expect(() => writer.add([leading[0]!])).toThrow(
      expect.objectContaining({ code: "ENVPACK_INPUT_MANIFEST_INVALID" }),
    );
    writer.add(rest);
    const written = await writer.finish();
    expect(written.digest).toBe(viaWriteBundle.digest);
    expect(written.entries).toBe(viaWriteBundle.entries);
    expect(await readdir(out)).toEqual([basename(written.path)]);
    // Harmless once finished; the bundle stays.
    await writer.abort();
    expect(await readdir(out)).toEqual([basename(written.path)]);
  });

  it("leaves nothing in the output directory when aborted mid-way", async () => {
    const src = await tempDir();
    const out = await tempDir();
    await pseudoRandomFile(join(src, "one.bin"), 4 * 1024 * 1024);
    const writer = openBundleWriter({ outDir: out });
    writer.add([
      { path: "one.bin", type: "file", source: join(src, "one.bin") },
    ]);
    await writer.abort();
    expect(await readdir(out)).toEqual([]);
    expect(() => writer.add([{ path: "x", type: "directory" }])).toThrow();
  });
});
