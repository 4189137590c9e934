// The deterministic bundle writer on real files, checked with our unpacker and the real zstd/tar.

import { createHash, randomBytes } from "node:crypto";
import {
  chmod,
  mkdir,
  readFile,
  readdir,
  readlink,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import {
  unpackBundle,
  writeBundle,
  type BundleEntry,
} from "../../packer/index.js";
import { tempDir } from "../helpers/temp-dir.js";

/** A small source tree at `dir` with the given mtime and file modes. */
async function sourceTree(
  dir: string,
  mtime: Date,
  mode: number,
): Promise<BundleEntry[]> {
  await mkdir(join(dir, "lib"), { recursive: true });
  await writeFile(join(dir, "lib", "a.js"), "module.exports = 1;\n");
  await writeFile(join(dir, "run.sh"), "#!/bin/sh\necho ok\n");
  await chmod(join(dir, "lib", "a.js"), mode);
  await chmod(join(dir, "run.sh"), 0o755);
  for (const f of ["lib/a.js", "run.sh"])
    await utimes(join(dir, f), mtime, mtime);
  return [
    {
      path: "run.sh",
      type: "file",
      source: join(dir, "run.sh"),
      executable: true,
    },
    { path: "pkg/lib/a.js", type: "file", source: join(dir, "lib", "a.js") },
    { path: "pkg/empty", type: "directory" },
    { path: "pkg/link", type: "symlink", linkTarget: "lib/a.js" },
    {
      path: ".envpack/meta.json",
      type: "file",
      data: Buffer.from('{"x":1}\n'),
    },
  ];
}

describe("writeBundle", () => {
  it("round-trips files, modes, symlinks and empty directories; the name is the digest of the bytes", async () => {
    const src = await tempDir();
    const out = await tempDir();
    const entries = await sourceTree(src, new Date(), 0o600);
    const written = await writeBundle({ entries, outDir: out });
    const bytes = await readFile(written.path);
    expect(written.digest).toBe(
      `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    );
    expect(written.path).toBe(join(out, `${written.digest.slice(7)}.tar.zst`));
    expect(await readdir(out)).toEqual([`${written.digest.slice(7)}.tar.zst`]);

    const dest = join(await tempDir(), "unpacked");
    await unpackBundle({
      file: written.path,
      dest,
      expectedDigest: written.digest,
    });
    expect(await readFile(join(dest, "pkg", "lib", "a.js"), "utf8")).toBe(
      "module.exports = 1;\n",
    );
    expect((await stat(join(dest, "pkg", "lib", "a.js"))).mode & 0o777).toBe(
      0o644,
    );
    expect((await stat(join(dest, "run.sh"))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(dest, "pkg", "link"))).toBe("lib/a.js");
    expect(await readdir(join(dest, "pkg", "empty"))).toEqual([]);
    expect(await readFile(join(dest, ".envpack", "meta.json"), "utf8")).toBe(
      '{"x":1}\n',
    );
  });

  it("gives byte-identical bundles from other source paths, mtimes, modes, umask, entry order and thread counts", async () => {
    const a = await sourceTree(await tempDir(), new Date("2020-05-05"), 0o600);
    const b = await sourceTree(
      join(await tempDir(), "deeper", "path"),
      new Date(),
      0o664,
    );
    const previous = process.umask(0o077);
    let one, two;
    try {
      one = await writeBundle({
        entries: a,
        outDir: await tempDir(),
        threads: 1,
      });
    } finally {
      process.umask(previous);
    }
    two = await writeBundle({
      entries: [...b].reverse(),
      outDir: await tempDir(),
      threads: 2,
    });
    expect(two.digest).toBe(one.digest);
    expect(await readFile(two.path)).toEqual(await readFile(one.path));
  });

  it("is readable by the real zstd and tar, as the worker-side runner reads it", async () => {
    const entries = await sourceTree(await tempDir(), new Date(), 0o644);
    const written = await writeBundle({ entries, outDir: await tempDir() });
    const { stdout } = await execa("sh", [
      "-c",
      `zstd -dc "${written.path}" | tar -tf -`,
    ]);
    expect(stdout.split("\n").sort()).toEqual(
      [
        ".envpack/",
        ".envpack/meta.json",
        "pkg/",
        "pkg/empty/",
        "pkg/lib/",
        "pkg/lib/a.js",
        "pkg/link",
        "run.sh",
      ].sort(),
    );
  });

  it("leaves nothing in the output directory when a source is missing or the signal aborts", async () => {
    const out = await tempDir();
    const src = await tempDir();
    const entries = await sourceTree(src, new Date(), 0o644);
    await expect(
      writeBundle({
        entries: [
          ...entries,
          { path: "gone", type: "file", source: join(src, "gone") },
        ],
        outDir: out,
      }),
    ).rejects.toMatchObject({ code: "ENOENT" });
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(
      writeBundle({ entries, outDir: out, signal: controller.signal }),
    ).rejects.toThrow();
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

  it("streams a large file without holding the bundle in memory", async () => {
    const src = await tempDir();
    const big = join(src, "big.bin");
    const chunk = randomBytes(1024 * 1024);
    await writeFile(
      big,
      Buffer.concat(
        Array.from({ length: 96 }, (_, i) =>
          i % 2 ? chunk : randomBytes(1024 * 1024),
        ),
      ),
    );
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(
      () => (peak = Math.max(peak, process.memoryUsage().rss)),
      5,
    );
    try {
      const written = await writeBundle({
        entries: [{ path: "big.bin", type: "file", source: big }],
        outDir: await tempDir(),
      });
      expect(written.size).toBeGreaterThan(40 * 1024 * 1024);
    } finally {
      clearInterval(timer);
    }
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  });
});
