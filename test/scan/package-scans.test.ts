// The remembered imports of package files: a scan through them equals a scan without, and a
// package's files are read again once anything in it changed (an import added inside it).

import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PackageScans, packageTrees, scan } from "../../src/scan/index.js";
import { tempDir } from "../helpers/temp-dir.js";

/** An app importing `a`, where a requires ./lib (which requires nothing yet); `b` is installed. */
async function app(): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, "main.js"), 'require("a");\n');
  for (const name of ["a", "b"]) {
    const pkg = join(dir, "node_modules", name);
    await mkdir(pkg, { recursive: true });
    await writeFile(
      join(pkg, "package.json"),
      JSON.stringify({ name, version: "1.0.0", main: "index.js" }),
    );
    await writeFile(join(pkg, "index.js"), "module.exports = 1;\n");
  }
  await writeFile(
    join(dir, "node_modules", "a", "index.js"),
    'module.exports = require("./lib");\n',
  );
  await writeFile(join(dir, "node_modules", "a", "lib.js"), "exports.x = 1;\n");
  return dir;
}

describe("package scans", () => {
  it("give the scan a scan without them gives, remember it, and see an import added inside a package", async () => {
    const dir = await app();
    const store = join(await tempDir(), "scan");
    const scanOf = (remembered: boolean) =>
      scan({
        entries: ["main.js"],
        cwd: dir,
        generatorVersion: "test",
        packageScans: remembered
          ? new PackageScans(store, "test", packageTrees())
          : undefined,
      });
    const plain = await scanOf(false);
    const first = await scanOf(true);
    expect(first).toEqual(plain);
    // Nothing was saved by the scan itself: the build saves. Save one and read it back (in a
    // store of its own: the first scans' remembered traversal would read no package file).
    const saved = join(await tempDir(), "scan");
    const saving = new PackageScans(saved, "test", packageTrees());
    await scan({
      entries: ["main.js"],
      cwd: dir,
      generatorVersion: "test",
      packageScans: saving,
    });
    await saving.save();
    expect((await readdir(saved)).length).toBe(1);
    const parsed: string[] = [];
    const reading = new PackageScans(saved, "test", packageTrees());
    const found = await reading.imports(
      join(dir, "node_modules", "a"),
      join(dir, "node_modules", "a", "lib.js"),
      async () => {
        parsed.push("lib.js");
        return null;
      },
    );
    expect(parsed).toEqual([]);
    expect(found).toEqual({ sites: [] });

    // lib.js now requires b: its package's tree stamp changes, so its files are read again.
    await writeFile(
      join(dir, "node_modules", "a", "lib.js"),
      'exports.x = require("b");\n',
    );
    const after = new PackageScans(saved, "test", packageTrees());
    const edited = await scan({
      entries: ["main.js"],
      cwd: dir,
      generatorVersion: "test",
      packageScans: after,
    });
    expect(edited.packages.map((p) => p.name)).toEqual(["a", "b"]);
    expect(plain.packages.map((p) => p.name)).toEqual(["a"]);
  });

  it("are not used by another scanner version", async () => {
    const dir = await app();
    const store = join(await tempDir(), "scan");
    const pkg = join(dir, "node_modules", "a");
    const one = new PackageScans(store, "v1", packageTrees());
    await one.imports(pkg, join(pkg, "lib.js"), async () => ({ sites: [] }));
    await one.save();
    const parsed: string[] = [];
    const two = new PackageScans(store, "v2", packageTrees());
    await two.imports(pkg, join(pkg, "lib.js"), async () => {
      parsed.push("lib.js");
      return null;
    });
    expect(parsed).toEqual(["lib.js"]);
  });
});
