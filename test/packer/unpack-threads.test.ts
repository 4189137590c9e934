// unpackBundle on an archive large enough for its writes to be shared over several threads
// (unpack-writer-pool.ts): the tree equals GNU tar's, links land after their targets, a conflict
// on any thread is refused and leaves nothing.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { unpackBundle } from "../../packer/index.js";
import { rawBundle, type RawMember } from "../helpers/hostile-tar.js";
import { tempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);

/** Incompressible text (hex), so the bundle is far above the inline-writer size. */
const noise = (bytes: number): string =>
  randomBytes(Math.ceil(bytes / 2))
    .toString("hex")
    .slice(0, bytes);

/**
 * Thousands of entries over many directories (several batches of operations), a file larger than
 * one batch's data (it spans batches), hard links and symlinks to files from the first batches.
 */
function manyEntries(): RawMember[] {
  const members: RawMember[] = [];
  for (let d = 0; d < 40; d++) {
    const dir = `pkg${String(d).padStart(2, "0")}`;
    members.push({ path: dir, type: "Directory", mode: d % 3 ? 0o755 : 0o750 });
    members.push({ path: `${dir}/lib`, type: "Directory" });
    for (let f = 0; f < 60; f++)
      members.push({
        path: `${dir}/lib/f${f}.js`,
        type: "File",
        data: noise(200 + f * 7),
        mode: f % 5 ? 0o644 : 0o755,
      });
  }
  members.push({ path: "big", type: "Directory" });
  members.push({ path: "big/blob", type: "File", data: noise(9 << 20) });
  for (let d = 0; d < 40; d += 4) {
    const dir = `pkg${String(d).padStart(2, "0")}`;
    members.push({
      path: `${dir}/hard`,
      type: "Link",
      linkpath: `pkg00/lib/f1.js`,
    });
    members.push({
      path: `${dir}/soft`,
      type: "SymbolicLink",
      linkpath: "lib/f2.js",
    });
  }
  members.push({ path: "tail/deep/x.txt", type: "File", data: "last" });
  return members;
}

/** Every entry under `dir`: path, type, size, mode, link count, symlink target. */
async function listing(dir: string): Promise<string[]> {
  const { stdout } = await run(
    "find",
    [".", "-printf", "%p %y %s %m %n %l\\n"],
    { cwd: dir, maxBuffer: 1 << 26 },
  );
  return stdout.trim().split("\n").sort();
}

describe("unpackBundle over several writer threads", () => {
  it("unpacks a large archive exactly as GNU tar does", async () => {
    const root = await tempDir("envpack-unpack-threads-");
    const bundle = join(root, "bundle.tar.zst");
    await writeFile(bundle, rawBundle(manyEntries()));
    const ours = join(root, "ours");
    const { entries } = await unpackBundle({ file: bundle, dest: ours });
    expect(entries).toBe(manyEntries().length);
    const theirs = join(root, "theirs");
    await run("mkdir", [theirs]);
    await run("sh", [
      "-c",
      `zstd -dc "$1" | tar -xf - -C "$2"`,
      "sh",
      bundle,
      theirs,
    ]);
    expect(await listing(ours)).toEqual(await listing(theirs));
    await run("diff", ["-r", ours, theirs]);
  });

  it("makes every directory read-only with readOnly, whichever thread made it", async () => {
    const root = await tempDir("envpack-unpack-threads-");
    const bundle = join(root, "bundle.tar.zst");
    await writeFile(bundle, rawBundle(manyEntries()));
    const dest = join(root, "dest");
    await unpackBundle({ file: bundle, dest, readOnly: true });
    const { stdout } = await run("find", [
      dest,
      "!",
      "-type",
      "l",
      "-perm",
      "/0222",
    ]);
    expect(stdout).toBe("");
  });

  it("refuses as corrupt a file that a later batch needs as a directory, leaving nothing", async () => {
    const root = await tempDir("envpack-unpack-threads-");
    const bundle = join(root, "bundle.tar.zst");
    await writeFile(
      bundle,
      rawBundle([
        { path: "clash", type: "File", data: "a file" },
        ...manyEntries(),
        { path: "clash/inside.txt", type: "File", data: "under a file" },
      ]),
    );
    const work = join(root, "work");
    await run("mkdir", [work]);
    const error = await unpackBundle({
      file: bundle,
      dest: join(work, "dest"),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE" });
    expect(await readdir(work)).toEqual([]);
  });
});
