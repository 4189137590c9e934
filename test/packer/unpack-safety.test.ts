// unpackBundle and ensureUnpacked outside the hostile-archive table (hostile-table.test.ts): an
// existing target, a full or read-only file system, leftovers of killed unpacks.

import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ensureUnpacked,
  removeStaleUnpacks,
  unpackBundle,
} from "../../packer/index.js";
import type { Digest } from "../../src/core/index.js";
import { rawBundle, writeZeroFileBundle } from "../helpers/hostile-tar.js";
import { withTmpfs } from "../helpers/small-fs.js";
import { tempDir } from "../helpers/temp-dir.js";

const digestOf = (bytes: Buffer): Digest =>
  `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest;

/** A small valid bundle with an .envpack directory, as built bundles have. */
function smallBundle(): Buffer {
  return rawBundle([
    { path: ".envpack", type: "Directory" },
    { path: "bin", type: "Directory" },
    { path: "bin/tool", type: "File", data: "#!/bin/sh\n", mode: 0o755 },
  ]);
}

describe("unpackBundle", () => {
  it("refuses an existing destination and leaves it untouched", async () => {
    const root = await tempDir("envpack-unpack-");
    const bundle = join(root, "bundle.tar.zst");
    const dest = join(root, "dest");
    await writeFile(
      bundle,
      rawBundle([{ path: "mine.txt", type: "File", data: "overwritten" }]),
    );
    await mkdir(dest);
    await writeFile(join(dest, "mine.txt"), "keep");
    await expect(unpackBundle({ file: bundle, dest })).rejects.toThrow(
      /already exists/,
    );
    expect(await readdir(root)).toEqual(["bundle.tar.zst", "dest"]);
    expect(await readFile(join(dest, "mine.txt"), "utf8")).toBe("keep");
  });

  it("regression: a full file system is ENVPACK_INPUT_NO_SPACE, and nothing is left", async () => {
    const root = await tempDir("envpack-unpack-");
    const bundle = join(root, "bundle.tar.zst");
    await writeZeroFileBundle(bundle, "big", 8 << 20);
    const small = join(root, "small");
    const error = await withTmpfs(small, { sizeBytes: 1 << 20 }, async () => {
      const failure = await unpackBundle({
        file: bundle,
        dest: join(small, "dest"),
      }).catch((e: unknown) => e);
      expect(await readdir(small)).toEqual([]);
      return failure;
    });
    expect(error).toMatchObject({
      code: "ENVPACK_INPUT_NO_SPACE",
      exitCode: 2,
      details: { errno: "ENOSPC", destination: join(small, "dest") },
    });
  });

  it("regression: a read-only file system is ENVPACK_INPUT_OUTPUT_UNWRITABLE (EROFS)", async () => {
    const root = await tempDir("envpack-unpack-");
    const bundle = join(root, "bundle.tar.zst");
    await writeFile(bundle, smallBundle());
    const frozen = join(root, "frozen");
    const error = await withTmpfs(
      frozen,
      { sizeBytes: 1 << 20, readOnly: true },
      () =>
        unpackBundle({ file: bundle, dest: join(frozen, "dest") }).catch(
          (e: unknown) => e,
        ),
    );
    expect(error).toMatchObject({
      code: "ENVPACK_INPUT_OUTPUT_UNWRITABLE",
      details: { errno: "EROFS" },
    });
  });
});

describe("ensureUnpacked", () => {
  it("regression: removes the temp directories of an unpack killed before (SIGKILL leaves them)", async () => {
    const root = await tempDir("envpack-unpack-");
    const bytes = smallBundle();
    const digest = digestOf(bytes);
    const hex = digest.slice(7);
    const bundle = join(root, `${hex}.tar.zst`);
    await writeFile(bundle, bytes);
    const envs = join(root, "envs");
    const other = `.${"0".repeat(64)}.abcdef.tmp`;
    for (const name of [`.${hex}.0123456789ab.tmp`, `.${hex}.4242.tmp`, other])
      await mkdir(join(envs, name, "half"), { recursive: true });
    const { dir, unpacked } = await ensureUnpacked({
      file: bundle,
      digest,
      envsDir: envs,
    });
    expect(unpacked).toBe(true);
    // Another bundle's temp may belong to a live unpack: it is not this unpack's to remove.
    expect((await readdir(envs)).sort()).toEqual([hex, other].sort());
    expect(await readdir(join(dir, "bin"))).toEqual(["tool"]);
  });

  it("regression: a full environments directory is ENVPACK_INPUT_NO_SPACE", async () => {
    const root = await tempDir("envpack-unpack-");
    const bundle = join(root, "bundle.tar.zst");
    await writeZeroFileBundle(bundle, "big", 8 << 20);
    const digest = digestOf(await readFile(bundle));
    const small = join(root, "small");
    const error = await withTmpfs(small, { sizeBytes: 1 << 20 }, () =>
      ensureUnpacked({
        file: bundle,
        digest,
        envsDir: join(small, "envs"),
      }).catch((e: unknown) => e),
    );
    expect(error).toMatchObject({
      code: "ENVPACK_INPUT_NO_SPACE",
      details: { errno: "ENOSPC" },
    });
  });
});

describe("removeStaleUnpacks", () => {
  it("regression: removes temps and locks of killed unpacks and keeps the ones of a live process", async () => {
    const root = await tempDir("envpack-unpack-");
    const envs = join(root, "envs");
    const dead = "a".repeat(64);
    const live = "b".repeat(64);
    const orphan = "c".repeat(64);
    await mkdir(join(envs, `.${dead}.1111.tmp`), { recursive: true });
    await mkdir(join(envs, `${dead}.lock`));
    // A pid that cannot exist (above pid_max), so the lock's holder is gone.
    await writeFile(join(envs, `${dead}.lock`, "pid"), "4194305 1\n");
    await mkdir(join(envs, `.${live}.2222.tmp`));
    await mkdir(join(envs, `${live}.lock`));
    const stat = await readFile(`/proc/${process.pid}/stat`, "utf8");
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    await writeFile(
      join(envs, `${live}.lock`, "pid"),
      `${process.pid} ${start}\n`,
    );
    await mkdir(join(envs, `.${orphan}.3333.tmp`));
    await mkdir(join(envs, orphan));
    const removed = await removeStaleUnpacks(envs);
    expect(removed.sort()).toEqual(
      [`.${dead}.1111.tmp`, `${dead}.lock`, `.${orphan}.3333.tmp`].sort(),
    );
    expect((await readdir(envs)).sort()).toEqual(
      [`.${live}.2222.tmp`, `${live}.lock`, orphan].sort(),
    );
  });
});
