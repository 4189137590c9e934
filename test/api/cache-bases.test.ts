// `envpack cache rm` with a Conda bundle that was run: its read-only layer copies go with their
// blobs, and so does the relocated base that links to them (a base without its layers is broken).

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureUnpacked } from "../../packer/index.js";
import { cacheRemove } from "../../src/api/index.js";
import {
  cacheLayeredApp,
  cachedBlob,
  condaProbeBundle,
  prefixOfTree,
} from "../helpers/layered-app.js";
import { tempDir } from "../helpers/temp-dir.js";

describe("cache rm with relocated bases", () => {
  it("removes the bundle's tree, its layers' copies and the base linking to them", async () => {
    const work = await tempDir("envpack-cache-bases-");
    const cacheDir = join(work, "cache");
    const bundle = await condaProbeBundle(
      1,
      join(work, "out"),
      join(work, "build-cache"),
    );
    await cacheLayeredApp(cacheDir, bundle);
    const envs = join(cacheDir, "envs");
    const { dir } = await ensureUnpacked({
      file: cachedBlob(cacheDir, bundle.digest),
      digest: bundle.digest,
      envsDir: envs,
    });
    const base = await prefixOfTree(dir);
    expect(base.startsWith(join(envs, "bases"))).toBe(true);

    const removed = await cacheRemove(cacheDir, [bundle.digest]);
    expect(removed.removed).toEqual([bundle.digest]);
    expect(removed.layers).toHaveLength(bundle.layers.length);
    expect((await readdir(envs)).sort()).toEqual(["bases", "layers"]);
    expect(await readdir(join(envs, "bases"))).toEqual([]);
    expect(await readdir(join(envs, "layers"))).toEqual([]);
  });
});
