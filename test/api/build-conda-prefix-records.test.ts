// A Conda bundle packs the whole prefix unless pruned: a record of a package the app does not
// import, replaced or edited in place, must give a new build whose packages layer holds it as it
// is now. Pruned, that package is not in the bundle, so the cached one is still right.

import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build } from "../../src/api/index.js";
import {
  copyCondaFixture,
  editKeepingStat,
  replaceFile,
} from "../helpers/conda-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

const RECORD = "conda-meta/fixturepkg-1.0.0-py311hfx0002_0.json";

/** A copy of the Conda fixture (this test changes it), an app importing only six, a cache. */
async function setUp(prune: boolean) {
  const prefix = await copyCondaFixture("conda-records");
  const app = await tempDir("envpack-conda-records-app-");
  await writeFile(join(app, "app.py"), "import six\n");
  const cacheDir = join(await tempDir(), "cache");
  const buildApp = () =>
    build({ entries: ["app.py"], cwd: app, env: prefix, cacheDir, prune });
  const first = await buildApp();
  expect(first.source).toBe("built");
  expect((await buildApp()).source).toBe("cache");
  return { prefix, cacheDir, buildApp, first };
}

/** The paths of a layer blob of the cache, read by the real zstd and tar. */
function layerFiles(
  cacheDir: string,
  built: Awaited<ReturnType<typeof build>>,
  role: string,
): { list: string[]; read: (path: string) => string } {
  const layer = built.layers.find((l) => l.role === role);
  if (layer === undefined) throw new Error(`no ${role} layer`);
  const blob = join(
    cacheDir,
    "blobs",
    "sha256",
    layer.digest.slice("sha256:".length),
  );
  const tar = execFileSync("zstd", ["-dc", blob], {
    maxBuffer: 1 << 30,
  });
  const list = execFileSync("tar", ["-t"], { input: tar, maxBuffer: 1 << 28 })
    .toString("utf8")
    .split("\n")
    .filter((l) => l !== "");
  const read = (path: string) => {
    const member = list.find((l) => l === path || l.endsWith(`/${path}`));
    if (member === undefined) throw new Error(`${path} not in the layer`);
    return execFileSync("tar", ["-xO", member], {
      input: tar,
      maxBuffer: 1 << 28,
    }).toString("utf8");
  };
  return { list, read };
}

describe("a Conda app built without --prune", () => {
  it("is built again, with the new record packed, after a record of a package it does not import is replaced", async () => {
    const { prefix, cacheDir, buildApp, first } = await setUp(false);
    await replaceFile(join(prefix, RECORD), '"1.0.0"', '"1.0.1"');

    const again = await buildApp();
    expect(again.source).toBe("built");
    expect(again.digest).not.toBe(first.digest);
    // The manifest (what the app imports) is the same; only the keys tell the prefixes apart.
    expect(again.inputDigest).toBe(first.inputDigest);
    expect(again.key).not.toBe(first.key);
    const packed = layerFiles(cacheDir, again, "packages").read(RECORD);
    expect(JSON.parse(packed).version).toBe("1.0.1");
    expect((await buildApp()).source).toBe("cache");
  });

  it("is built again after that record is edited in place with its size and mtime kept", async () => {
    const { prefix, cacheDir, buildApp, first } = await setUp(false);
    await editKeepingStat(join(prefix, RECORD), '"1.0.0"', '"1.0.9"');

    const again = await buildApp();
    expect(again.source).toBe("built");
    expect(again.digest).not.toBe(first.digest);
    const packed = layerFiles(cacheDir, again, "packages").read(RECORD);
    expect(JSON.parse(packed).version).toBe("1.0.9");
  });
});

describe("a Conda app built with --prune", () => {
  it("keeps its bundle when a record of a package it does not import is replaced: that package is not packed", async () => {
    const { prefix, cacheDir, buildApp, first } = await setUp(true);
    expect(
      layerFiles(cacheDir, first, "packages").list.some((p) =>
        p.includes("fixturepkg"),
      ),
    ).toBe(false);
    await replaceFile(join(prefix, RECORD), '"1.0.0"', '"1.0.1"');

    const again = await buildApp();
    expect(again.source).toBe("cache");
    expect(again.digest).toBe(first.digest);
    expect(again.key).toBe(first.key);
  });
});
