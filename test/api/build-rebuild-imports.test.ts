// A rebuild after an app edit reuses the remembered package side of the scan (the traversal
// inside packages, app files' imports by content, compiled outputs) and still gives exactly the
// bundle a cold build of the same tree gives: imports added, removed or respelled, a package
// installed where a lookup passes, damaged cache entries.

import {
  appendFile,
  mkdir,
  readFile,
  readdir,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build, type BuildResult } from "../../src/api/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Builds `app` in a cache kept across calls, and compares each result with a cold build. */
async function rebuilder(app: string) {
  const cacheDir = join(await tempDir(), "cache");
  const options = (cache: string) => ({
    entries: ["src/main.ts"],
    cwd: app,
    cacheDir: cache,
  });
  return {
    cacheDir,
    /** A rebuild in the kept cache, checked against a cold build of the same tree. */
    rebuild: async (): Promise<BuildResult> => {
      const warm = await build(options(cacheDir));
      const cold = await build(options(join(await tempDir(), "cache")));
      expect(warm.source).toBe("built");
      expect(warm.inputDigest).toBe(cold.inputDigest);
      expect(warm.digest).toBe(cold.digest);
      return warm;
    },
  };
}

/** A package `name` in `dir` whose index requires `requires`. */
async function writePackage(
  dir: string,
  name: string,
  version: string,
  requires: string[],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name, version, main: "index.js" }),
  );
  await writeFile(
    join(dir, "index.js"),
    requires.map((r) => `require(${JSON.stringify(r)});\n`).join("") +
      `module.exports = ${JSON.stringify(version)};\n`,
  );
}

describe("rebuilds after app edits", () => {
  it("follow imports added, removed and respelled as a cold build does", async () => {
    const app = await appCopy("hello");
    const { rebuild } = await rebuilder(app);
    const main = join(app, "src", "main.ts");
    const original = await readFile(main, "utf8");
    const digests = [(await rebuild()).inputDigest];

    // A package the app never reached, which reaches another.
    await writePackage(join(app, "node_modules", "extra"), "extra", "1.0.0", [
      "ms",
    ]);
    await appendFile(main, 'import "extra";\n');
    digests.push((await rebuild()).inputDigest);
    // Respelled: the same package's file by its path.
    await writeFile(main, `${original}import "extra/index.js";\n`);
    digests.push((await rebuild()).inputDigest);
    // Removed again.
    await writeFile(main, original.replace(/^import pc .*$/m, ""));
    digests.push((await rebuild()).inputDigest);
    // A comment only: the imports stay; the manifest's file digest changes.
    await appendFile(main, "// edit\n");
    digests.push((await rebuild()).inputDigest);
    expect(new Set(digests).size).toBe(digests.length);
  });

  it("see a package installed where a lookup from a package passes", async () => {
    const app = await appCopy("hello");
    const extra = join(app, "node_modules", "extra");
    await writePackage(extra, "extra", "1.0.0", ["ms"]);
    // extra has a node_modules of its own already: installing into it changes no tree stamp.
    await writePackage(
      join(extra, "node_modules", "other"),
      "other",
      "1.0.0",
      [],
    );
    const main = join(app, "src", "main.ts");
    await appendFile(main, 'import "extra";\n');
    const { rebuild } = await rebuilder(app);
    const first = await rebuild();

    await writePackage(join(extra, "node_modules", "ms"), "ms", "9.9.9", []);
    await appendFile(main, "// edit\n");
    const nested = await rebuild();
    expect(nested.inputDigest).not.toBe(first.inputDigest);
  });

  it("see, without an app edit, a package installed into an existing nested node_modules or scope", async () => {
    const app = await appCopy("hello");
    const extra = join(app, "node_modules", "extra");
    await writePackage(extra, "extra", "1.0.0", ["ms", "@x/a"]);
    await writePackage(join(extra, "node_modules", "other"), "other", "1", []);
    await writePackage(join(extra, "node_modules", "@x", "b"), "@x/b", "1", []);
    await appendFile(join(app, "src", "main.ts"), 'import "extra";\n');
    const { rebuild } = await rebuilder(app);
    const digests = [(await rebuild()).inputDigest];
    // Neither install changes a lockfile, a package tree walk or an app file: the fingerprint
    // must still miss (rebuild() checks that it built and matches a cold build).
    await writePackage(join(extra, "node_modules", "ms"), "ms", "9.9.9", []);
    digests.push((await rebuild()).inputDigest);
    await writePackage(join(extra, "node_modules", "@x", "a"), "@x/a", "1", []);
    digests.push((await rebuild()).inputDigest);
    expect(new Set(digests).size).toBe(3);
  });

  it("see a package installed into a scope made beside an app edit", async () => {
    const app = await appCopy("hello");
    const extra = join(app, "node_modules", "extra");
    await writePackage(extra, "extra", "1.0.0", ["@y/a"]);
    await writePackage(join(extra, "node_modules", "other"), "other", "1", []);
    const main = join(app, "src", "main.ts");
    await appendFile(main, 'import "extra";\n');
    const { rebuild } = await rebuilder(app);
    const digests = [(await rebuild()).inputDigest];
    // A scope made in extra's node_modules beside an app edit: the rebuild's fingerprint must
    // watch it, though the app edit alone would let it keep the watched paths it read.
    await writePackage(join(extra, "node_modules", "@y", "b"), "@y/b", "1", []);
    await appendFile(main, "// edit\n");
    digests.push((await rebuild()).inputDigest);
    // Installed into that scope, without an app edit.
    await writePackage(join(extra, "node_modules", "@y", "a"), "@y/a", "1", []);
    digests.push((await rebuild()).inputDigest);
    expect(new Set(digests).size).toBe(3);
  });

  it("see a dependency added to, or installed for, a package no file imports", async () => {
    const app = await appCopy("hello");
    const modules = join(app, "node_modules");
    // extra's code imports nothing: dep is reached only through package.json dependencies, so
    // the remembered traversal of package files never looks at dep.
    await writePackage(join(modules, "extra"), "extra", "1.0.0", []);
    await writeFile(
      join(modules, "extra", "package.json"),
      JSON.stringify({
        name: "extra",
        version: "1.0.0",
        dependencies: { dep: "1" },
      }),
    );
    const dep = join(modules, "dep");
    await writePackage(dep, "dep", "1.0.0", []);
    await writePackage(join(dep, "node_modules", "other"), "other", "1", []);
    await writePackage(join(modules, "late"), "late", "1.0.0", []);
    const main = join(app, "src", "main.ts");
    await appendFile(main, 'import "extra";\n');
    const { rebuild } = await rebuilder(app);
    const digests = [(await rebuild()).inputDigest];

    // dep's package.json edited in place to depend on late (installed, reached by nothing else).
    await writeFile(
      join(dep, "package.json"),
      JSON.stringify({
        name: "dep",
        version: "1.0.0",
        dependencies: { late: "1", nested: "1" },
      }),
    );
    await appendFile(main, "// edit\n");
    digests.push((await rebuild()).inputDigest);
    // nested, missing until now, installed into dep's existing node_modules: no tree stamp changes.
    await writePackage(join(dep, "node_modules", "nested"), "nested", "1", []);
    await appendFile(main, "// edit\n");
    digests.push((await rebuild()).inputDigest);
    expect(new Set(digests).size).toBe(3);
  });

  it("give the same bundle with damaged scan and compile stores", async () => {
    const app = await appCopy("hello");
    const { rebuild, cacheDir } = await rebuilder(app);
    await rebuild();
    const stores = [
      "scan/npm",
      "scan/npm-traversals",
      "scan/npm-closures",
      "scan/app",
      "compiled",
    ];
    for (const store of stores) {
      const files = await readdir(join(cacheDir, store));
      expect(files.length, store).toBeGreaterThan(0);
      // A short write, valid JSON of another shape, another format.
      for (const [i, file] of files.entries())
        await writeFile(
          join(cacheDir, store, file),
          ['{ "format', "[]", '{"format":"x"}'][i % 3] ?? "",
        );
    }
    await appendFile(join(app, "src", "main.ts"), "// edit\n");
    await rebuild();
    await appendFile(join(app, "src", "greet.ts"), "// edit\n");
    await rebuild();
  });
});
