// Remembered package walks checked ahead on the addon's threads answer as isTreeUnchanged does:
// an edit in one of many walks, a directory recorded missing that now exists, a walk the checks
// were not started for; with the addon and without it.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkTreesAhead } from "../../src/api/tree-checks.js";
import { nativeStat } from "../../src/core/index.js";
import {
  isTreeUnchanged,
  walkPackageTree,
  type PackageTreeWalk,
} from "../../src/scan/light.js";
import { dateAsInstalled } from "../helpers/installed.js";
import { tempDir } from "../helpers/temp-dir.js";

/** `count` package directories of two files each, their times set back, with their walks. */
async function packages(
  count: number,
): Promise<Array<[dir: string, walk: PackageTreeWalk]>> {
  const root = await tempDir();
  const made: Array<[string, PackageTreeWalk]> = [];
  for (let i = 0; i < count; i++) {
    const dir = join(root, "node_modules", `pkg-${i}`);
    await mkdir(join(dir, "lib"), { recursive: true });
    await writeFile(join(dir, "package.json"), `{"name":"pkg-${i}"}\n`);
    await writeFile(join(dir, "lib", "index.js"), `module.exports = ${i};\n`);
    await dateAsInstalled(dir);
    made.push([dir, walkPackageTree(dir)]);
  }
  return made;
}

describe("checkTreesAhead", () => {
  for (const native of [nativeStat(), null])
    it(`answers as isTreeUnchanged does (${native === null ? "JavaScript" : "native threads"})`, async () => {
      const walks = await packages(9);
      const [editedDir] = walks[4] as [string, PackageTreeWalk];
      await writeFile(join(editedDir, "lib", "index.js"), "edited;\n");
      const missing = join(editedDir, "..", "not-yet");
      const checks = checkTreesAhead([...walks, [missing, null]], native);
      expect(checks.areAllUnchanged()).toBe(false);
      walks.forEach(([dir, walk], i) =>
        expect(checks.isUnchanged(dir, walk), `pkg-${i}`).toBe(i !== 4),
      );
      // A walk of its own (not one the checks began with) is checked when asked.
      const [dir0] = walks[0] as [string, PackageTreeWalk];
      expect(checks.isUnchanged(dir0, walkPackageTree(dir0))).toBe(true);

      const held = walks.filter((_, i) => i !== 4);
      expect(
        checkTreesAhead([...held, [missing, null]], native).areAllUnchanged(),
      ).toBe(true);
      await mkdir(missing);
      expect(
        checkTreesAhead([...held, [missing, null]], native).areAllUnchanged(),
      ).toBe(false);
    });

  for (const native of [nativeStat(), null])
    it(`checks a big walk in parts, each part's change seen, a name with a newline too (${native === null ? "JavaScript" : "native threads"})`, async () => {
      const dir = join(await tempDir(), "node_modules", "big");
      await mkdir(join(dir, "lib"), { recursive: true });
      // Enough paths for many parts of a walk's lines, one with a newline in its name.
      const names = Array.from(
        { length: 1500 },
        (_, i) => `file-${String(i).padStart(4, "0")}.js`,
      );
      names.push("new\nline.js");
      for (const name of names)
        await writeFile(join(dir, "lib", name), `${name};\n`);
      await dateAsInstalled(dir);
      const walk = walkPackageTree(dir);
      expect(walk.lines.length).toBeGreaterThan(64 * 1024);
      const check = () => checkTreesAhead([[dir, walk]], native);
      expect(check().isUnchanged(dir, walk)).toBe(true);
      expect(check().areAllUnchanged()).toBe(true);
      for (const name of [
        "file-0000.js",
        "file-0777.js",
        "new\nline.js",
        "file-1499.js",
      ]) {
        const file = join(dir, "lib", name);
        await writeFile(file, "edited, longer than before;\n");
        expect(check().isUnchanged(dir, walk), name).toBe(false);
        expect(check().areAllUnchanged(), name).toBe(false);
        await writeFile(file, `${name};\n`);
        // Same size, yet a new mtime: still a change.
        expect(check().isUnchanged(dir, walk), name).toBe(
          isTreeUnchanged(dir, walk.lines),
        );
      }
    });
});
