// A rebuild reuses what did not change (package tree walks, package scans) and sees everything
// that did: a dependency's file edited or added; a damaged scan store costs only a parse.

import { appendFile, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build } from "../../src/api/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

/** `build()` of the hello app's entry, in a cache of its own. */
async function builder(app: string) {
  const cacheDir = join(await tempDir(), "cache");
  return {
    cacheDir,
    build: () => build({ entries: ["src/main.ts"], cwd: app, cacheDir }),
  };
}

describe("rebuilds", () => {
  it("stay hits while nothing changed, and see a dependency's file edited in place", async () => {
    const app = await appCopy("hello");
    const { build: rebuild } = await builder(app);
    const first = await rebuild();
    expect(first.source).toBe("built");
    expect(await rebuild()).toMatchObject({
      source: "cache",
      digest: first.digest,
    });
    await appendFile(
      join(app, "node_modules", "ms", "index.js"),
      "\nmodule.exports.patched = true;\n",
    );
    const edited = await rebuild();
    expect(edited.source).toBe("built");
    expect(edited.inputDigest).not.toBe(first.inputDigest);
    expect(edited.layers.find((l) => l.role === "packages")?.cached).toBe(
      false,
    );
    expect(await rebuild()).toMatchObject({
      source: "cache",
      digest: edited.digest,
    });
  });

  it("see a dependency's file edited in place beside an app edit", async () => {
    const app = await appCopy("hello");
    const { build: rebuild } = await builder(app);
    // A second cache of the same builds whose rebuild walks every package afresh (no fingerprint).
    const { build: reference, cacheDir: referenceCache } = await builder(app);
    const first = await rebuild();
    expect((await reference()).digest).toBe(first.digest);
    // The app file misses the fingerprint first; the package walk that changed must still be seen.
    await appendFile(join(app, "src", "main.ts"), "// edit\n");
    await appendFile(
      join(app, "node_modules", "ms", "index.js"),
      "\nmodule.exports.patched = true;\n",
    );
    const both = await rebuild();
    expect(both.source).toBe("built");
    expect(both.layers.find((l) => l.role === "packages")?.cached).toBe(false);
    await rm(join(referenceCache, "fingerprints"), { recursive: true });
    const walked = await reference();
    expect(both.inputDigest).toBe(walked.inputDigest);
    expect(both.digest).toBe(walked.digest);
    // What it recorded rests on the new walks: the next build is a hit on the same bundle.
    expect(await rebuild()).toMatchObject({
      source: "cache",
      digest: both.digest,
    });
  });

  it("see a file added deep inside a dependency", async () => {
    const app = await appCopy("hello");
    const { build: rebuild } = await builder(app);
    const first = await rebuild();
    await mkdir(join(app, "node_modules", "picocolors", "extra"));
    await writeFile(
      join(app, "node_modules", "picocolors", "extra", "new.js"),
      "module.exports = 1;\n",
    );
    const added = await rebuild();
    expect(added.source).toBe("built");
    expect(added.inputDigest).not.toBe(first.inputDigest);
  });

  it("give the same bundle with a damaged or missing package scan store", async () => {
    const app = await appCopy("hello");
    const { build: rebuild, cacheDir } = await builder(app);
    const first = await rebuild();
    const store = join(cacheDir, "scan", "npm");
    const files = await readdir(store);
    expect(files.length).toBeGreaterThan(0);
    for (const [i, file] of files.entries())
      await writeFile(join(store, file), i % 2 === 0 ? "{ trunc" : "[]");
    await appendFile(join(app, "src", "main.ts"), "// edit\n");
    const damaged = await rebuild();
    expect(damaged.source).toBe("built");
    expect(damaged.inputDigest).not.toBe(first.inputDigest);
    // The same app in an empty cache: every package file parsed afresh.
    const clean = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
    });
    expect(damaged.digest).toBe(clean.digest);
    expect(damaged.inputDigest).toBe(clean.inputDigest);
  });
});
