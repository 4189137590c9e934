// The input digest is a property of the app and its packages, not of where they sit on disk.

import { cp, readFile, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scan } from "../../src/scan/index.js";
import { materialiseCase, readCase } from "../helpers/scan-case.js";
import { tempDir } from "../helpers/temp-dir.js";

const basic = join(
  import.meta.dirname,
  "..",
  "..",
  "fixtures",
  "scan",
  "js-basic",
);

async function copyOfBasic(): Promise<string> {
  const dir = await tempDir("envpack-digest-");
  await materialiseCase(basic, join(dir, "app"), await readCase(basic));
  return join(dir, "app");
}

const digestOf = async (dir: string) =>
  (await scan({ entries: ["src/main.ts"], cwd: dir, generatorVersion: "test" }))
    .inputDigest;

describe("input digest of a JS app", () => {
  it("is the same after moving the project to a deeper path with new mtimes", async () => {
    const first = await copyOfBasic();
    const other = await tempDir("envpack-digest-moved-");
    const moved = join(other, "a", "much", "longer", "path");
    await cp(first, moved, { recursive: true });
    await utimes(
      join(moved, "src", "util.ts"),
      new Date(2001, 1, 1),
      new Date(2001, 1, 1),
    );
    expect(await digestOf(moved)).toBe(await digestOf(first));
  });

  it("changes when an app file is edited", async () => {
    const dir = await copyOfBasic();
    const before = await digestOf(dir);
    await writeFile(
      join(dir, "src", "util.ts"),
      "export const double = (n: number): number => n + n;\n",
    );
    expect(await digestOf(dir)).not.toBe(before);
  });

  it("changes when a package is upgraded", async () => {
    const dir = await copyOfBasic();
    const before = await digestOf(dir);
    const pkgJson = join(dir, "node_modules", "dep-b", "package.json");
    const json = JSON.parse(await readFile(pkgJson, "utf8")) as {
      version: string;
    };
    await writeFile(pkgJson, JSON.stringify({ ...json, version: "2.2.0" }));
    expect(await digestOf(dir)).not.toBe(before);
  });

  it("changes when a package's file changes even at the same version (no lockfile: tree hash)", async () => {
    const dir = await copyOfBasic();
    const before = await scan({
      entries: ["src/main.ts"],
      cwd: dir,
      generatorVersion: "test",
    });
    expect(before.packages.every((p) => p.integritySource === "tree")).toBe(
      true,
    );
    await writeFile(
      join(dir, "node_modules", "dep-a", "index.js"),
      "module.exports = 42;\n",
    );
    expect(await digestOf(dir)).not.toBe(before.inputDigest);
  });

  it("does not depend on where a symlinked node_modules store lives", async () => {
    const first = await copyOfBasic();
    const base = await tempDir("envpack-digest-store-");
    const store = join(base, "store", "node_modules");
    await cp(join(first, "node_modules"), store, { recursive: true });
    const apps = [join(base, "a", "app"), join(base, "b", "deeper", "app")];
    for (const app of apps) {
      await cp(first, app, {
        recursive: true,
        filter: (src) => !src.includes("node_modules"),
      });
      await symlink(store, join(app, "node_modules"));
    }
    const [a, b] = await Promise.all(
      apps.map((cwd) =>
        scan({ entries: ["src/main.ts"], cwd, generatorVersion: "test" }),
      ),
    );
    expect(a!.packages.map((p) => p.id)).toEqual([
      "node_modules/dep-a",
      "node_modules/dep-b",
      "node_modules/lib-cjs",
    ]);
    expect(a!.files.map((f) => f.path)).toContain("src/main.ts");
    expect(b!.inputDigest).toBe(a!.inputDigest);
    expect(a!.inputDigest).toBe(await digestOf(first));
  });
});
