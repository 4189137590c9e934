// Hostile bundles built in code: each is refused with its code (naming the entry), nothing lands
// outside the target (a sentinel directory beside it stays empty), and the target never appears.

import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unpackBundle } from "../../packer/index.js";
import type { Digest } from "../../src/core/index.js";
import {
  badChecksumBundle,
  rawBundle,
  truncatedTarBundle,
  truncatedZstdBundle,
  type RawMember,
} from "../helpers/hostile-tar.js";
import { tempDir } from "../helpers/temp-dir.js";

/** root/work/dest is the target; root/outside is where escapes would land. */
interface Arena {
  root: string;
  work: string;
  dest: string;
  sentinel: string;
}

async function arena(): Promise<Arena> {
  const root = await tempDir("envpack-hostile-");
  await mkdir(join(root, "work"));
  await mkdir(join(root, "outside"));
  return {
    root,
    work: join(root, "work"),
    dest: join(root, "work", "dest"),
    sentinel: join(root, "outside"),
  };
}

interface Outcome {
  code: string;
  entry?: unknown;
  /** What the sentinel directory holds afterwards. */
  outside: string[];
  /** What the target's parent holds afterwards: no dest, no temp directory. */
  work: string[];
}

/** Unpacks `bundle` (members or raw bytes) in `a`, reporting the error code and what is on disk. */
async function attempt(
  bundle: RawMember[] | Buffer,
  options: { expectedDigest?: Digest; a?: Arena } = {},
): Promise<Outcome> {
  const a = options.a ?? (await arena());
  const file = join(a.root, "bundle.tar.zst");
  await writeFile(file, Buffer.isBuffer(bundle) ? bundle : rawBundle(bundle));
  const outcome = await unpackBundle({
    file,
    dest: a.dest,
    expectedDigest: options.expectedDigest,
  }).then(
    () => ({ code: "none" }),
    (error: { code?: string; details?: { entry?: unknown } }) => ({
      code: String(error.code),
      ...(error.details?.entry === undefined
        ? {}
        : { entry: error.details.entry }),
    }),
  );
  return {
    ...outcome,
    outside: await readdir(a.sentinel),
    work: await readdir(a.work),
  };
}

const file = (path: string, data = "x"): RawMember => ({
  path,
  type: "File",
  data,
});

/** The expected outcome of a refused bundle: its code, the entry named, nothing on disk. */
const refused = (code: string, entry?: string): Outcome => ({
  code,
  ...(entry === undefined ? {} : { entry }),
  outside: [],
  work: [],
});

const UNSAFE = "ENVPACK_INTEGRITY_UNSAFE_ENTRY";
const CORRUPT = "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE";

describe("unpackBundle refuses hostile bundles", () => {
  it("unpacks a clean bundle with a directory, a file, a symlink and a hardlink (control case)", async () => {
    const result = await attempt([
      { path: "a", type: "Directory" },
      file("a/b.txt"),
      { path: "a/l", type: "SymbolicLink", linkpath: "b.txt" },
      { path: "a/up", type: "SymbolicLink", linkpath: "../a/b.txt" },
      { path: "h", type: "Link", linkpath: "a/b.txt" },
    ]);
    expect(result).toEqual({ code: "none", outside: [], work: ["dest"] });
  });

  it("fails hard on a ../ traversal instead of node-tar's default strip-and-warn", async () => {
    expect(await attempt([file("../../outside/evil.txt")])).toEqual(
      refused(UNSAFE, "../../outside/evil.txt"),
    );
  });

  it("refuses a .. hidden inside a path (a/../../x)", async () => {
    expect(await attempt([file("a/../../outside/evil.txt")])).toEqual(
      refused(UNSAFE, "a/../../outside/evil.txt"),
    );
  });

  it("refuses an absolute path", async () => {
    const a = await arena();
    const target = join(a.sentinel, "abs.txt");
    expect(await attempt([file(target)], { a })).toEqual(
      refused(UNSAFE, target),
    );
  });

  it("refuses a symlink escaping the target before the file written through it", async () => {
    expect(
      await attempt([
        { path: "link", type: "SymbolicLink", linkpath: "../../outside" },
        file("link/evil.txt"),
      ]),
    ).toEqual(refused(UNSAFE, "link"));
  });

  it("refuses an absolute symlink target", async () => {
    expect(
      await attempt([{ path: "etc", type: "SymbolicLink", linkpath: "/etc" }]),
    ).toEqual(refused(UNSAFE, "etc"));
  });

  it("refuses writing through an in-bundle symlink, even one that stays inside", async () => {
    expect(
      await attempt([
        { path: "d", type: "Directory" },
        { path: "l", type: "SymbolicLink", linkpath: "d" },
        file("l/x.txt"),
      ]),
    ).toEqual(refused(UNSAFE, "l/x.txt"));
  });

  it("refuses writing through a symlink spelled ./l/x", async () => {
    expect(
      await attempt([
        { path: "d", type: "Directory" },
        { path: "l", type: "SymbolicLink", linkpath: "d" },
        file("./l/x.txt"),
      ]),
    ).toEqual(refused(UNSAFE, "./l/x.txt"));
  });

  it("regression: a symlink that is lexically inside but escapes through another symlink (l -> s/.., s -> .)", async () => {
    expect(
      await attempt([
        { path: "l", type: "SymbolicLink", linkpath: "s/.." },
        { path: "s", type: "SymbolicLink", linkpath: "." },
      ]),
    ).toEqual(refused(UNSAFE, "l"));
  });

  it("refuses symlinks that loop", async () => {
    expect(
      await attempt([
        { path: "a", type: "SymbolicLink", linkpath: "b" },
        { path: "b", type: "SymbolicLink", linkpath: "a" },
      ]),
    ).toEqual(refused(UNSAFE, "a"));
  });

  it("refuses an entry that replaces a symlink", async () => {
    expect(
      await attempt([
        { path: "d", type: "Directory" },
        { path: "l", type: "SymbolicLink", linkpath: "d" },
        { path: "l", type: "Directory" },
      ]),
    ).toEqual(refused(UNSAFE, "l"));
  });

  it("refuses a hardlink escaping the target", async () => {
    expect(
      await attempt([
        { path: "hl", type: "Link", linkpath: "../../outside/secret" },
      ]),
    ).toEqual(refused(UNSAFE, "hl"));
  });

  it("refuses a hardlink to a file that is not in the bundle", async () => {
    expect(
      await attempt([{ path: "hl", type: "Link", linkpath: "missing.txt" }]),
    ).toEqual(refused(UNSAFE, "hl"));
  });

  it("regression: a hardlink to a path that became a symlink (it would copy the link, not a file)", async () => {
    expect(
      await attempt([
        { path: "d", type: "Directory" },
        file("d/a"),
        { path: "d/a", type: "SymbolicLink", linkpath: "../x" },
        { path: "h", type: "Link", linkpath: "d/a" },
      ]),
    ).toEqual(refused(UNSAFE, "h"));
  });

  it("refuses a hardlink to a directory", async () => {
    expect(
      await attempt([
        { path: "d", type: "Directory" },
        { path: "h", type: "Link", linkpath: "d" },
      ]),
    ).toEqual(refused(UNSAFE, "h"));
  });

  it("refuses a character device", async () => {
    expect(await attempt([{ path: "tty", type: "CharacterDevice" }])).toEqual(
      refused(UNSAFE, "tty"),
    );
  });

  it("refuses a block device", async () => {
    expect(await attempt([{ path: "sda", type: "BlockDevice" }])).toEqual(
      refused(UNSAFE, "sda"),
    );
  });

  it("refuses a fifo", async () => {
    expect(await attempt([{ path: "pipe", type: "FIFO" }])).toEqual(
      refused(UNSAFE, "pipe"),
    );
  });

  it("reports a truncated zstd stream as corrupt", async () => {
    const members = [
      file("a.txt", "y".repeat(100_000)),
      file("b.txt", "z".repeat(100_000)),
    ];
    expect(await attempt(truncatedZstdBundle(members))).toEqual(
      refused(CORRUPT),
    );
  });

  it("reports a tar cut inside a file (in a complete zstd stream) as corrupt", async () => {
    const members = [
      file("a.txt", "y".repeat(100_000)),
      file("b.txt", "z".repeat(100_000)),
    ];
    expect(await attempt(truncatedTarBundle(members))).toEqual(
      refused(CORRUPT),
    );
  });

  it("reports a tar header with a bad checksum as corrupt", async () => {
    expect(await attempt(badChecksumBundle([file("a.txt")]))).toEqual(
      refused(CORRUPT),
    );
  });

  it("reports a file entry replacing a non-empty directory as corrupt, not as a file-system error", async () => {
    expect(
      await attempt([{ path: "d", type: "Directory" }, file("d/f"), file("d")]),
    ).toEqual(refused(CORRUPT));
  });

  it("reports bytes that are not zstd as corrupt", async () => {
    expect(await attempt(Buffer.from("this is not a bundle at all"))).toEqual(
      refused(CORRUPT),
    );
  });

  it("checks the digest before reading entries: a hostile bundle with the wrong digest is a mismatch", async () => {
    const bytes = rawBundle([file("../../outside/evil.txt")]);
    const wrong =
      `sha256:${createHash("sha256").update("other").digest("hex")}` as Digest;
    expect(await attempt(bytes, { expectedDigest: wrong })).toEqual(
      refused("ENVPACK_INTEGRITY_DIGEST_MISMATCH"),
    );
  });

  it("unpacks when the expected digest matches", async () => {
    const bytes = rawBundle([file("a.txt")]);
    const right =
      `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;
    expect(await attempt(bytes, { expectedDigest: right })).toEqual({
      code: "none",
      outside: [],
      work: ["dest"],
    });
  });

  it("refuses an existing destination and leaves it untouched", async () => {
    const a = await arena();
    const bundle = join(a.root, "bundle.tar.zst");
    await writeFile(bundle, rawBundle([file("mine.txt", "overwritten")]));
    await mkdir(a.dest);
    await writeFile(join(a.dest, "mine.txt"), "keep");
    await expect(unpackBundle({ file: bundle, dest: a.dest })).rejects.toThrow(
      /already exists/,
    );
    expect(await readdir(a.work)).toEqual(["dest"]);
    expect(await readFile(join(a.dest, "mine.txt"), "utf8")).toBe("keep");
  });
});
