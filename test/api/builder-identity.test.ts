// The builder identity covers the packer's code: a cache written by other packer code is missed
// and rebuilt (to the same bytes when the code writes the same bytes), never served as it is.

import { execFile } from "node:child_process";
import {
  appendFile,
  cp,
  mkdir,
  readFile,
  readdir,
  rm,
  writeFile,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { build } from "../../src/api/index.js";
import { builderIdentity } from "../../src/api/bundle-cache.js";
import { envpackPackageDir } from "../../src/core/index.js";
import { packerCodeDigest } from "../../packer/code-digest.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

const ROOT = envpackPackageDir();
const SCRIPT = join(ROOT, "scripts", "packer-digest.mjs");
const DIGEST_FILE = join("dist", "packer", "code-digest.json");

/** What the script covers, copied from this (built) repository into `dir`. */
async function copyPackerCode(dir: string): Promise<void> {
  for (const path of [
    join("dist", "packer"),
    join("dist", "src", "conda"),
    join("dist", "src", "api", "plan-bundle.js"),
    join("dist", "src", "api", "compile-app.js"),
    "runtime",
    join("native", "source-hash.c"),
  ]) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await cp(join(ROOT, path), join(dir, path), { recursive: true });
  }
}

/** The digest scripts/packer-digest.mjs records for the tree at `root`. */
async function digestOf(root: string): Promise<string> {
  await promisify(execFile)(process.execPath, [SCRIPT, root]);
  const { digest } = JSON.parse(
    await readFile(join(root, DIGEST_FILE), "utf8"),
  ) as { digest: string };
  return digest;
}

describe("the builder identity", () => {
  it("carries the digest of the packer's code, which any change to that code changes", async () => {
    const copy = await tempDir();
    await copyPackerCode(copy);
    const digest = await digestOf(copy);
    expect(builderIdentity()).toContain(`packer@${digest.slice(7, 23)} `);
    await appendFile(join(copy, "dist", "packer", "pack-worker.mjs"), "\n");
    expect(await digestOf(copy)).not.toBe(digest);
  });

  it("a cache built by other packer code is a miss; the rebuild gives the same bundle", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const options = { entries: ["src/main.ts"], cwd: app, cacheDir };
    const first = await build(options);
    expect((await build(options)).cached).toBe(true);
    // Every record as another packer (the same envpack version) would have written it.
    const other = builderIdentity().replace(
      /packer@\w+/,
      "packer@0123456789abcdef",
    );
    expect(other).not.toBe(builderIdentity());
    const records = join(cacheDir, "index", "sha256");
    for (const name of await readdir(records)) {
      const text = await readFile(join(records, name), "utf8");
      expect(text).toContain(builderIdentity());
      await writeFile(
        join(records, name),
        text.replaceAll(builderIdentity(), other),
      );
    }
    const again = await build(options);
    expect(again.cached).toBe(false);
    expect(again.layers.map((l) => [l.role, l.cached])).toEqual([
      ["runtime", false],
      ["packages", false],
      ["app", false],
    ]);
    expect(again.digest).toBe(first.digest);
    expect(again.layers).toEqual(
      first.layers.map((l) => ({ ...l, cached: false })),
    );
  });

  it("a tree compiled by plain tsc, without the recorded digest, computes the same one", async () => {
    const copy = await tempDir();
    await copyPackerCode(copy);
    const digest = await digestOf(copy);
    await rm(join(copy, DIGEST_FILE));
    expect(packerCodeDigest(copy)).toBe(digest);
    await appendFile(join(copy, "runtime", "envpack-run"), "\n");
    expect(packerCodeDigest(copy)).not.toBe(digest);
  });
});
