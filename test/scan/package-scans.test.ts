// The remembered imports of package files: a scan through them equals a scan without, and a
// package's files are read again once anything in it changed (an import added inside it).

import { mkdir, readdir, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { PackageScans, packageTrees, scan } from "../../src/scan/index.js";
import { packageScansFile } from "../../src/scan/light.js";
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
          ? new PackageScans(
              packageScansFile(store, [join(dir, "main.js")]),
              "test",
              packageTrees(),
            )
          : undefined,
      });
    const plain = await scanOf(false);
    const first = await scanOf(true);
    expect(first).toEqual(plain);
    // Nothing was saved by the scan itself: the build saves. Save one and read it back (in a
    // store of its own: the first scans' remembered traversal would read no package file).
    const saved = join(await tempDir(), "scan");
    const file = packageScansFile(saved, [join(dir, "main.js")]);
    const saving = new PackageScans(file, "test", packageTrees());
    await scan({
      entries: ["main.js"],
      cwd: dir,
      generatorVersion: "test",
      packageScans: saving,
    });
    await saving.save();
    expect(await readdir(join(saved, "npm"))).toEqual([basename(file)]);
    const parsed: string[] = [];
    const reading = new PackageScans(file, "test", packageTrees());
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
    const after = new PackageScans(file, "test", packageTrees());
    const edited = await scan({
      entries: ["main.js"],
      cwd: dir,
      generatorVersion: "test",
      packageScans: after,
    });
    expect(edited.packages.map((p) => p.name)).toEqual(["a", "b"]);
    expect(plain.packages.map((p) => p.name)).toEqual(["a"]);
  });

  it("keep, in one file per set of entries, the packages a later save did not read", async () => {
    const dir = await app();
    const file = packageScansFile(await tempDir(), [join(dir, "main.js")]);
    const parsed: string[] = [];
    const read = async (scans: PackageScans, name: string) => {
      const pkg = join(dir, "node_modules", name);
      return scans.imports(pkg, join(pkg, "index.js"), async () => {
        parsed.push(name);
        return { sites: [] };
      });
    };
    for (const name of ["a", "b"]) {
      const scans = new PackageScans(file, "test", packageTrees());
      await read(scans, name);
      await scans.save();
    }
    const again = new PackageScans(file, "test", packageTrees());
    for (const name of ["a", "b"])
      expect(await read(again, name)).toEqual({ sites: [] });
    expect(parsed).toEqual(["a", "b"]);
    expect(await readdir(dirname(file))).toEqual([basename(file)]);
  });

  it("are not used by another scanner version", async () => {
    const dir = await app();
    const store = join(await tempDir(), "scan");
    const pkg = join(dir, "node_modules", "a");
    const file = packageScansFile(store, [join(dir, "main.js")]);
    const one = new PackageScans(file, "v1", packageTrees());
    await one.imports(pkg, join(pkg, "lib.js"), async () => ({ sites: [] }));
    await one.save();
    const parsed: string[] = [];
    const two = new PackageScans(file, "v2", packageTrees());
    await two.imports(pkg, join(pkg, "lib.js"), async () => {
      parsed.push("lib.js");
      return null;
    });
    expect(parsed).toEqual(["lib.js"]);
  });
});
