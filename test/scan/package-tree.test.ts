// A package tree's walk checked again by stats alone: every change the strict stamp sees (an edit in
// place, a mode, a file added, removed or replaced) fails the check; bytes and times put back pass.

import {
  chmod,
  lutimes,
  mkdir,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  isTreeUnchanged,
  treeEntries,
  walkPackageTree,
  type PackageTreeWalk,
} from "../../src/scan/light.js";
import { nativeStat } from "../../src/core/light.js";
import { dateAsInstalled, INSTALLED } from "../helpers/installed.js";
import { tempDir } from "../helpers/temp-dir.js";

const LATER = new Date("1985-10-26T08:16:00Z");

/** A package with a nested directory, a file whose name holds a newline, and a nested node_modules. */
async function pkg(): Promise<string> {
  const dir = join(await tempDir(), "pkg");
  await mkdir(join(dir, "lib"), { recursive: true });
  await mkdir(join(dir, "node_modules", "dep"), { recursive: true });
  await writeFile(join(dir, "package.json"), '{"name":"pkg"}\n');
  await writeFile(join(dir, "lib", "index.js"), "module.exports = 1;\n");
  await writeFile(join(dir, "lib", "odd\nname.js"), "exports.x = 2;\n");
  await writeFile(join(dir, "node_modules", "dep", "index.js"), "1;\n");
  // As an install leaves it: a walk does not vouch for entries changed within its own clock
  // tick (see the last describe).
  await dateAsInstalled(dir);
  return dir;
}

/** Whether the walk still holds, and that its strict stamp says the same as a fresh walk. */
function holds(dir: string, walk: PackageTreeWalk): boolean {
  const unchanged = isTreeUnchanged(dir, walk.lines);
  expect(walkPackageTree(dir).strict === walk.strict).toBe(unchanged);
  return unchanged;
}

describe("isTreeUnchanged", () => {
  it("holds for an untouched tree and for edits in a nested node_modules (another package)", async () => {
    const dir = await pkg();
    const walk = walkPackageTree(dir);
    expect(walk.lines.startsWith(".\0")).toBe(true);
    expect(holds(dir, walk)).toBe(true);
    await writeFile(join(dir, "node_modules", "dep", "index.js"), "2;\n");
    expect(holds(dir, walk)).toBe(true);
  });

  it("fails for a same-size edit in place that moves mtime, a mode change, and a file added, removed or replaced", async () => {
    const file = (dir: string) => join(dir, "lib", "index.js");
    const changes: Array<(dir: string) => Promise<void>> = [
      async (dir) => {
        await writeFile(file(dir), "module.exports = 2;\n");
        await utimes(file(dir), LATER, LATER);
      },
      (dir) => chmod(file(dir), 0o755),
      (dir) => writeFile(join(dir, "lib", "added.js"), ""),
      (dir) => rm(join(dir, "lib", "odd\nname.js")),
      async (dir) => {
        // Same bytes and times under a new inode, the directory's times put back too.
        const lib = join(dir, "lib");
        const before = await stat(lib);
        await writeFile(`${file(dir)}.new`, "module.exports = 1;\n");
        await utimes(`${file(dir)}.new`, INSTALLED, INSTALLED);
        await rename(`${file(dir)}.new`, file(dir));
        await utimes(lib, before.atime, before.mtime);
      },
    ];
    for (const change of changes) {
      const dir = await pkg();
      const walk = walkPackageTree(dir);
      await change(dir);
      expect(holds(dir, walk), String(change)).toBe(false);
    }
  });

  it("fails when the directory is gone, and holds once bytes and times are put back in place", async () => {
    const dir = await pkg();
    const file = join(dir, "lib", "index.js");
    const walk = walkPackageTree(dir);
    await writeFile(file, "module.exports = 3;\n");
    expect(isTreeUnchanged(dir, walk.lines)).toBe(false);
    await writeFile(file, "module.exports = 1;\n");
    await utimes(file, INSTALLED, INSTALLED);
    expect(holds(dir, walk)).toBe(true);
    await rm(dir, { recursive: true });
    expect(isTreeUnchanged(dir, walk.lines)).toBe(false);
  });
});

describe("a walk within the clock tick of a change", () => {
  for (const native of [nativeStat(), null])
    it(`does not vouch for what changed in its tick (${native === null ? "JavaScript" : "native"} walk)`, async () => {
      const dir = await pkg();
      const lib = join(dir, "lib");
      await writeFile(join(lib, "early.js"), "");
      // A name whose digits before a newline read as a recent time: a path, not an mtime.
      const odd = `${Date.now() + 60_000}\nx.js`;
      await writeFile(join(lib, odd), "");
      await lutimes(join(lib, odd), INSTALLED, INSTALLED);
      const walk = walkPackageTree(dir, native);
      expect(treeEntries(walk).map((e) => e.path)).toContain(`lib/${odd}`);
      // A file added in the same tick of the file-system clock: lib/ keeps the mtime walked.
      const walked = await stat(lib);
      await writeFile(join(lib, "late.js"), "");
      await utimes(lib, walked.atime, walked.mtime);
      expect(isTreeUnchanged(dir, walk.lines, native)).toBe(false);
      expect(isTreeUnchanged(dir, walk.lines, null)).toBe(false);
      // Only lib/ and early.js changed lately: the entries installed before keep their times.
      expect(
        walk.lines.split("\n").filter((line) => line.endsWith("\0racy")),
      ).toEqual([
        expect.stringMatching(/^lib\0/),
        expect.stringMatching(/^lib\/early\.js\0/),
      ]);
      // Dated as an install leaves it, the tree walks again to a walk that holds.
      await dateAsInstalled(lib);
      const again = walkPackageTree(dir, native);
      expect(again.lines).not.toContain("racy");
      expect(holds(dir, again)).toBe(true);
    });
});
