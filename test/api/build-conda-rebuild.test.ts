// A Conda app left unchanged is built again when its environment changes under it: a conda-meta
// record replaced or edited in place, a package pip-installed beside the records. None of these
// may be answered from the cache with the manifest of the environment as it was.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build, scan } from "../../src/api/index.js";
import {
  copyCondaFixture,
  editKeepingStat,
  replaceFile,
} from "../helpers/conda-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

const SIX_RECORD = "conda-meta/six-1.17.0-pyhd8ed1ab_0.json";
const SITE = "lib/python3.11/site-packages";

/** A copy of the Conda fixture (this test changes it), an app importing six and yaml, a cache. */
async function setUp() {
  const prefix = await copyCondaFixture("conda-touch");
  const app = await tempDir("envpack-conda-touch-app-");
  await writeFile(join(app, "app.py"), "import six\nimport yaml\n");
  const cacheDir = join(await tempDir(), "cache");
  const buildApp = () =>
    build({ entries: ["app.py"], cwd: app, env: prefix, cacheDir });
  const scanApp = () => scan({ entries: ["app.py"], cwd: app, env: prefix });
  const first = await buildApp();
  expect(first.source).toBe("built");
  // Unchanged, the next build is a hit.
  expect((await buildApp()).source).toBe("cache");
  return { prefix, buildApp, scanApp, first };
}

describe("a Conda app whose environment changed", () => {
  it("is built again after a record is replaced (a new inode, as conda writes it)", async () => {
    const { prefix, buildApp, scanApp, first } = await setUp();
    await replaceFile(join(prefix, SIX_RECORD), '"1.17.0"', '"1.17.1"');

    const again = await buildApp();
    expect(again.source).toBe("built");
    expect(again.inputDigest).not.toBe(first.inputDigest);
    const manifest = await scanApp();
    expect(again.inputDigest).toBe(manifest.inputDigest);
    expect(manifest.packages.find((p) => p.id === "conda:six")?.version).toBe(
      "1.17.1",
    );
  });

  it("is built again after a record is edited in place with its size and mtime kept", async () => {
    const { prefix, buildApp, scanApp, first } = await setUp();
    await editKeepingStat(join(prefix, SIX_RECORD), '"1.17.0"', '"1.17.9"');

    const again = await buildApp();
    expect(again.source).toBe("built");
    expect(again.inputDigest).not.toBe(first.inputDigest);
    expect(again.inputDigest).toBe((await scanApp()).inputDigest);
  });

  it("is built again after a package is pip-installed beside the records: its import is no longer unresolved", async () => {
    const { prefix, buildApp, scanApp, first } = await setUp();
    expect((await scanApp()).unresolved.map((u) => u.specifier)).toEqual([
      "yaml",
    ]);
    const site = join(prefix, SITE);
    await mkdir(join(site, "yaml"));
    await writeFile(join(site, "yaml", "__init__.py"), "VALUE = 1\n");
    const distInfo = join(site, "PyYAML-6.0.1.dist-info");
    await mkdir(distInfo);
    await writeFile(
      join(distInfo, "METADATA"),
      "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n",
    );
    await writeFile(join(distInfo, "INSTALLER"), "pip\n");
    await writeFile(join(distInfo, "top_level.txt"), "yaml\n");
    await writeFile(
      join(distInfo, "RECORD"),
      "yaml/__init__.py,,\nPyYAML-6.0.1.dist-info/METADATA,,\nPyYAML-6.0.1.dist-info/RECORD,,\n",
    );

    const again = await buildApp();
    expect(again.source).toBe("built");
    expect(again.inputDigest).not.toBe(first.inputDigest);
    const manifest = await scanApp();
    expect(again.inputDigest).toBe(manifest.inputDigest);
    expect(manifest.unresolved).toEqual([]);
    expect(manifest.packages.map((p) => p.id)).toContain("pip:pyyaml");
  });
});
