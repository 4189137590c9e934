// The native batch stats against their JavaScript twins on real trees: the same walks, the same
// verdicts after every kind of change, the same path stamps, the same errors; the native source
// hash against the JavaScript SipHash; and a missing or broken addon is no addon.

import {
  cp,
  mkdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
  readdir,
} from "node:fs/promises";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { sipHash } from "../../packer/conda/hash-based-pyc.mjs";
import {
  loadNativeStat,
  nativeStat,
  nativeStatFile,
  pathStamps,
  type NativeStat,
} from "../../src/core/index.js";
import {
  isTreeUnchanged,
  walkPackageTree,
  type PackageTreeWalk,
} from "../../src/scan/light.js";
import { dateAsInstalled, INSTALLED } from "../helpers/installed.js";
import { tempDir } from "../helpers/temp-dir.js";

const execFileAsync = promisify(execFile);
const LATER = new Date("1985-10-26T08:16:00Z");
const seconds = (date: Date) => date.getTime() / 1000;

function addon(): NativeStat {
  const native = nativeStat();
  // npm install builds it (scripts/build-native.mjs); without it this file tests nothing native.
  if (native === null) throw new Error("the native addon is not built");
  return native;
}

/** A package reached through a link, with links of every kind, a nested node_modules and an empty directory. */
async function pkg(): Promise<{ dir: string; real: string }> {
  const root = await tempDir();
  const real = join(root, "store", "pkg");
  await mkdir(join(real, "lib", "empty"), { recursive: true });
  await mkdir(join(real, "node_modules", "dep"), { recursive: true });
  await writeFile(join(real, "package.json"), '{"name":"pkg"}\n');
  await writeFile(join(real, "lib", "index.js"), "module.exports = 1;\n");
  await writeFile(join(real, "lib", "odd\nname.js"), "exports.x = 2;\n");
  await writeFile(join(real, "node_modules", "dep", "index.js"), "1;\n");
  await symlink("index.js", join(real, "lib", "alias.js"));
  await symlink("gone.js", join(real, "lib", "dangling.js"));
  await symlink("lib", join(real, "linked-dir"));
  const dir = join(root, "node_modules", "pkg");
  await mkdir(join(root, "node_modules"));
  await symlink(real, dir);
  await dateAsInstalled(root);
  // Past a half millisecond: rounded up to the next one, as JavaScript's Math.round does.
  await utimes(
    join(real, "package.json"),
    INSTALLED,
    seconds(INSTALLED) + 6e-4,
  );
  return { dir, real };
}

/** Walks `dir` both ways, requires the same walk, and that the native one was not handed back. */
function walkBoth(dir: string): PackageTreeWalk {
  expect(addon().walkTree(dir)).toBeDefined();
  const walk = walkPackageTree(dir, addon());
  expect(walk).toEqual(walkPackageTree(dir, null));
  return walk;
}

/** The batch check of `dirs` with `lines` on threads; required to be there. */
function checkTrees(
  dirs: string[],
  lines: string[],
): (index: number) => boolean | undefined {
  const verdict = addon().checkTrees?.(dirs, lines);
  if (verdict === undefined) throw new Error("the addon has no checkTrees");
  return verdict;
}

/** The verdict both ways (natively alone and on threads), required to be the same. */
function unchangedBoth(dir: string, walk: PackageTreeWalk): boolean {
  const native = addon().checkTree(dir, walk.lines);
  expect(native).toBeDefined();
  expect(isTreeUnchanged(dir, walk.lines, null)).toBe(native);
  expect(checkTrees([dir], [walk.lines])(0)).toBe(native);
  return native as boolean;
}

describe("native batch stats", () => {
  it("walk a tree of links, nested node_modules and odd names as JavaScript does", async () => {
    const { dir } = await pkg();
    const walk = walkBoth(dir);
    expect(walk.lines).toContain("lib/dangling.js\0");
    expect(walk.lines).not.toContain("node_modules");
    expect(walk.lines).not.toContain("linked-dir/");
    expect(unchangedBoth(dir, walk)).toBe(true);
  });

  it("see every change JavaScript sees, and no other", async () => {
    const file = (real: string) => join(real, "lib", "index.js");
    const changes: Array<[string, boolean, (real: string) => Promise<void>]> = [
      ["nothing", true, async () => {}],
      [
        "an edit keeping size and times",
        true,
        async (real) => {
          await writeFile(file(real), "module.exports = 2;\n");
          await utimes(file(real), INSTALLED, INSTALLED);
        },
      ],
      [
        "mtime moved below the millisecond",
        true,
        (real) =>
          utimes(file(real), INSTALLED, INSTALLED.getTime() / 1000 + 0.0004),
      ],
      [
        "mtime moved past a half millisecond",
        false,
        (real) => utimes(file(real), INSTALLED, seconds(INSTALLED) + 6e-4),
      ],
      ["mtime only", false, (real) => utimes(file(real), INSTALLED, LATER)],
      [
        "an edit keeping the size",
        false,
        (real) => writeFile(file(real), "module.exports = 3;\n"),
      ],
      [
        "a link pointed elsewhere",
        false,
        async (real) => {
          await rm(join(real, "lib", "alias.js"));
          await symlink("odd\nname.js", join(real, "lib", "alias.js"));
        },
      ],
      ["a file removed", false, (real) => rm(join(real, "package.json"))],
      [
        "an empty directory removed",
        false,
        (real) => rm(join(real, "lib", "empty"), { recursive: true }),
      ],
      ["the package removed", false, (real) => rm(real, { recursive: true })],
      [
        "a directory replaced by a link to its copy",
        false,
        async (real) => {
          await cp(join(real, "lib"), join(real, "lib-copy"), {
            recursive: true,
            preserveTimestamps: true,
          });
          await rm(join(real, "lib"), { recursive: true });
          await symlink("lib-copy", join(real, "lib"));
        },
      ],
    ];
    for (const [what, unchanged, change] of changes) {
      const { dir, real } = await pkg();
      const walk = walkBoth(dir);
      await change(real);
      expect(unchangedBoth(dir, walk), what).toBe(unchanged);
    }
  });

  it("check many walks on threads as one at a time, whatever order they are asked in", async () => {
    const made = await Promise.all([...Array(12).keys()].map(() => pkg()));
    const walks = made.map(({ dir }) => walkBoth(dir));
    const edited = new Set([0, 5, 11]);
    for (const i of edited)
      await writeFile(
        join((made[i] as { real: string }).real, "lib", "index.js"),
        "module.exports = 'edited';\n",
      );
    const dirs = made.map(({ dir }) => dir);
    const lines = walks.map((w) => w.lines);
    // A walk through a link to itself (ELOOP): undecided, left for JavaScript.
    const looped = await pkg();
    await symlink("loop", join(looped.real, "loop"));
    dirs.push(looped.dir);
    lines.push("loop/x\0\n");
    const expected = dirs.map((dir, i) =>
      i === 12 ? undefined : addon().checkTree(dir, lines[i] as string),
    );
    expect(expected.filter((v) => v === false)).toHaveLength(edited.size);
    for (const order of [
      [...dirs.keys()],
      [...dirs.keys()].reverse(),
      [6, 12, 0, 11, 1, 10, 2, 9, 3, 8, 4, 7, 5],
    ]) {
      const verdict = checkTrees(dirs, lines);
      for (const i of order) expect(verdict(i), `walk ${i}`).toBe(expected[i]);
      // Asked again: the same answer, checked once.
      for (const i of order) expect(verdict(i)).toBe(expected[i]);
      expect(verdict(dirs.length)).toBeUndefined();
    }
    expect(addon().checkTrees?.(dirs, lines.slice(1))).toBeUndefined();
    expect(checkTrees([], [])(0)).toBeUndefined();
  });

  it("hand back names JavaScript sorts otherwise and errors JavaScript throws", async () => {
    const { dir, real } = await pkg();
    await writeFile(join(real, "lib", "é.js"), "");
    expect(addon().walkTree(dir)).toBeUndefined();
    expect(walkPackageTree(dir, addon())).toEqual(walkPackageTree(dir, null));
    // A path through a link to itself: ELOOP, which neither side takes for a missing path.
    await symlink("loop", join(real, "loop"));
    expect(addon().checkTree(dir, "loop/x\0\n")).toBeUndefined();
    expect(() => isTreeUnchanged(dir, "loop/x\0\n", addon())).toThrow(
      expect.objectContaining({ code: "ELOOP" }),
    );
    expect(() => walkPackageTree(join(real, "missing"), addon())).toThrow(
      expect.objectContaining({ code: "ENOENT" }),
    );
  });

  it("stamp watched paths as JavaScript does: files, directories, links, missing paths", async () => {
    const { dir, real } = await pkg();
    const paths = [
      dir,
      join(real, "package.json"),
      join(real, "lib", "alias.js"),
      join(real, "lib", "dangling.js"),
      join(real, "missing"),
      join(real, "package.json", "under-a-file"),
      join(real, "loop"),
    ];
    await symlink("loop", join(real, "loop"));
    const native = addon().stamps(paths);
    expect(native.slice(0, 6).every((s) => s !== undefined)).toBe(true);
    // ELOOP: left for JavaScript, which throws it.
    expect(native[6]).toBeUndefined();
    const some = paths.slice(0, 6);
    expect(pathStamps(some, addon())).toEqual(pathStamps(some, null));
    expect(pathStamps(some, null).slice(3)).toEqual([
      "missing",
      "missing",
      "missing",
    ]);
    const info = await stat(join(real, "package.json"), { bigint: true });
    expect(pathStamps(some, addon())[1]).toBe(
      `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`,
    );
    expect(() => pathStamps(paths, addon())).toThrow(
      expect.objectContaining({ code: "ELOOP" }),
    );
  });

  it("agree on every package of the realworld fixture", async () => {
    const modules = join(
      inject("fixtures").apps["realworld"] as string,
      "node_modules",
    );
    const dirs: string[] = [];
    for (const name of await readdir(modules)) {
      if (name.startsWith(".")) continue;
      if (!name.startsWith("@")) dirs.push(join(modules, name));
      else
        for (const inner of await readdir(join(modules, name)))
          dirs.push(join(modules, name, inner));
    }
    expect(dirs.length).toBeGreaterThan(50);
    for (const dir of dirs)
      expect(unchangedBoth(dir, walkBoth(dir))).toBe(true);
  });
});

describe("sourceHash", () => {
  it("gives the JavaScript SipHash of every file, its length and its mtime as a .pyc holds it; undefined where it cannot read", async () => {
    const dir = await tempDir();
    const lengths = [...Array(41).keys(), 63, 64, 65, 4095, 100_003];
    // importlib's int(st_mtime) & 0xFFFFFFFF, st_mtime a double (rounded up past .9999999),
    // truncated towards zero before 1970; touch sets the nanoseconds exactly.
    const mtimes = [
      ["@1700000000.999999999", 1_700_000_001],
      ["@1700000000.9999998", 1_700_000_000],
      ["@-5.25", 2 ** 32 - 5],
    ] as const;
    // Python 3.11's magic number with its \r\n (1-3 rounds), and 3.10's (2-4).
    const keys = [
      [0x0a0d0da7, 1, 3],
      [0x0a0d0d6f, 2, 4],
    ] as const;
    for (const length of lengths) {
      const bytes = randomBytes(length);
      const file = join(dir, `source-${length}.py`);
      await writeFile(file, bytes);
      const [mtime, header] = mtimes[length % mtimes.length] as readonly [
        string,
        number,
      ];
      await execFileAsync("touch", ["-d", mtime, file]);
      for (const [key, c, d] of keys) {
        const out = addon().sourceHash(file, key, c, d);
        expect(out, `${length} bytes`).toBeDefined();
        expect([...(out as Buffer).subarray(0, 8)]).toEqual([
          ...sipHash(bytes, key, 0, c, d),
        ]);
        expect((out as Buffer).readBigUInt64LE(8)).toBe(BigInt(length));
        expect((out as Buffer).readUInt32LE(16), `mtime ${mtime}`).toBe(header);
      }
    }
    expect(
      addon().sourceHash(join(dir, "missing.py"), 1, 1, 3),
    ).toBeUndefined();
    expect(addon().sourceHash(dir, 1, 1, 3)).toBeUndefined();
    expect(addon().sourceHash(`${dir}\0x`, 1, 1, 3)).toBeUndefined();
  });
});

describe("loadNativeStat", () => {
  it("is null for a missing addon and for a file that is no addon", async () => {
    const dir = await tempDir();
    expect(loadNativeStat(join(dir, "missing.node"))).toBeNull();
    await writeFile(join(dir, "broken.node"), "not an ELF file\n");
    expect(loadNativeStat(join(dir, "broken.node"))).toBeNull();
  });
});

describe("nativeStatFile", () => {
  it("names the addon nativeStat loaded and checked: a worker thread requires that very module", () => {
    const file = nativeStatFile();
    expect(file).not.toBeNull();
    expect(createRequire(import.meta.url)(file as string)).toBe(nativeStat());
  });
});
