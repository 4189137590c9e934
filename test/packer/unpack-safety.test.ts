// Hostile bundles built in code: each is refused with its code, and nothing lands outside the
// target (a sentinel directory beside it stays empty; the target itself is never created).

import { createHash } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unpackBundle } from "../../packer/index.js";
import type { Digest } from "../../src/core/index.js";
import { rawBundle, type RawMember } from "../helpers/hostile-tar.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Arena {
  root: string;
  dest: string;
  sentinel: string;
}

/** root/work/dest is the target; root/outside is where escapes would land. */
async function arena(): Promise<Arena> {
  const root = await tempDir("envpack-hostile-");
  await mkdir(join(root, "work"));
  await mkdir(join(root, "outside"));
  return {
    root,
    dest: join(root, "work", "dest"),
    sentinel: join(root, "outside"),
  };
}

async function attempt(members: RawMember[] | Buffer, expectedDigest?: Digest) {
  const a = await arena();
  const file = join(a.root, "bundle.tar.zst");
  await writeFile(
    file,
    Buffer.isBuffer(members) ? members : rawBundle(members),
  );
  const outcome = await unpackBundle({
    file,
    dest: a.dest,
    expectedDigest,
  }).then(
    () => ({ code: "none" }),
    (error: { code?: string }) => ({ code: error.code }),
  );
  return {
    code: outcome.code,
    outside: await readdir(a.sentinel),
    work: await readdir(join(a.root, "work")),
  };
}

const file = (path: string, data = "x"): RawMember => ({
  path,
  type: "File",
  data,
});

describe("unpackBundle refuses hostile bundles", () => {
  it("a clean bundle unpacks (control case)", async () => {
    const result = await attempt([
      { path: "a", type: "Directory" },
      file("a/b.txt"),
      { path: "a/l", type: "SymbolicLink", linkpath: "b.txt" },
    ]);
    expect(result).toEqual({ code: "none", outside: [], work: ["dest"] });
  });

  it("path traversal with ..", async () => {
    expect(await attempt([file("../../outside/evil.txt")])).toEqual({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      outside: [],
      work: [],
    });
  });

  it("absolute path", async () => {
    const a = await arena();
    const target = join(a.sentinel, "abs.txt");
    const result = await attempt([file(target)]);
    expect(result.code).toBe("ENVPACK_INTEGRITY_UNSAFE_ENTRY");
    expect(await readdir(a.sentinel)).toEqual([]);
    expect(result.work).toEqual([]);
  });

  it("symlink escaping the target, then a file written through it", async () => {
    const result = await attempt([
      { path: "link", type: "SymbolicLink", linkpath: "../../outside" },
      file("link/evil.txt"),
    ]);
    expect(result).toEqual({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      outside: [],
      work: [],
    });
  });

  it("absolute symlink target", async () => {
    expect(
      (await attempt([{ path: "etc", type: "SymbolicLink", linkpath: "/etc" }]))
        .code,
    ).toBe("ENVPACK_INTEGRITY_UNSAFE_ENTRY");
  });

  it("writing through an in-bundle symlink", async () => {
    const result = await attempt([
      { path: "d", type: "Directory" },
      { path: "l", type: "SymbolicLink", linkpath: "d" },
      file("l/x.txt"),
    ]);
    expect(result).toEqual({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      outside: [],
      work: [],
    });
  });

  it("hardlink escaping the target", async () => {
    const result = await attempt([
      { path: "hl", type: "Link", linkpath: "../../outside/secret" },
    ]);
    expect(result).toEqual({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      outside: [],
      work: [],
    });
  });

  it("hardlink to a file that is not in the bundle", async () => {
    expect(
      (await attempt([{ path: "hl", type: "Link", linkpath: "missing.txt" }]))
        .code,
    ).toBe("ENVPACK_INTEGRITY_UNSAFE_ENTRY");
  });

  it("device and fifo entries", async () => {
    expect(
      (await attempt([{ path: "tty", type: "CharacterDevice" }])).code,
    ).toBe("ENVPACK_INTEGRITY_UNSAFE_ENTRY");
    expect((await attempt([{ path: "pipe", type: "FIFO" }])).code).toBe(
      "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
    );
  });

  it("truncated zstd stream", async () => {
    const whole = rawBundle([
      file("a.txt", "y".repeat(100_000)),
      file("b.txt", "z".repeat(100_000)),
    ]);
    const result = await attempt(
      whole.subarray(0, Math.floor(whole.length / 2)),
    );
    expect(result).toEqual({
      code: "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE",
      outside: [],
      work: [],
    });
  });

  it("garbage instead of zstd", async () => {
    expect(
      (await attempt(Buffer.from("this is not a bundle at all"))).code,
    ).toBe("ENVPACK_INTEGRITY_CORRUPT_ARCHIVE");
  });

  it("digest mismatch is refused before anything is written", async () => {
    const bytes = rawBundle([file("a.txt")]);
    const wrong =
      `sha256:${createHash("sha256").update("other").digest("hex")}` as Digest;
    expect(await attempt(bytes, wrong)).toEqual({
      code: "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
      outside: [],
      work: [],
    });
  });
});
