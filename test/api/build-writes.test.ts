// A cold build writes its package-edit records and memo stores beside its packing: all of them are
// on disk when it returns, a memo store that cannot be written costs nothing but a debug event,
// and a record that cannot be written fails the build as any cache write does.

import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build } from "../../src/api/index.js";
import type { EnvpackEvent } from "../../src/core/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

describe("a cold build's side writes", () => {
  it("are all on disk, whole, when the build returns", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const built = await build({ entries: ["src/main.ts"], cwd: app, cacheDir });
    expect(built.source).toBe("built");
    const files = await filesUnder(cacheDir);
    // One as-installed record per package of the hello app (ms, picocolors).
    expect(files.filter((f) => f.startsWith("package-trees/"))).toHaveLength(2);
    expect(files.filter((f) => f.startsWith("fingerprints/"))).toHaveLength(1);
    expect(files.some((f) => f.startsWith(join("scan", "npm")))).toBe(true);
    expect(files.filter((f) => f.endsWith(".tmp"))).toEqual([]);
    // The next build is answered from what they recorded.
    expect(
      await build({ entries: ["src/main.ts"], cwd: app, cacheDir }),
    ).toMatchObject({ source: "cache", digest: built.digest });
  });

  it("leave the build standing when a memo store cannot be written", async () => {
    const app = await appCopy("hello");
    const reference = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
    });
    // `scan` and `fingerprints` as regular files: every store under them fails with ENOTDIR.
    const events: EnvpackEvent[] = [];
    const blocked = join(await tempDir(), "cache");
    await mkdir(blocked);
    await writeFile(join(blocked, "scan"), "not a directory");
    await writeFile(join(blocked, "fingerprints"), "not a directory");
    const built = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir: blocked,
      onEvent: (e) => events.push(e),
    });
    expect(built).toMatchObject({
      source: "built",
      digest: reference.digest,
      inputDigest: reference.inputDigest,
    });
    const debug = events.flatMap((e) =>
      e.type === "debug" ? [e.message] : [],
    );
    expect(
      debug.some((m) => m.startsWith("package scans not remembered:")),
    ).toBe(true);
    expect(debug.some((m) => m.startsWith("fingerprint not remembered:"))).toBe(
      true,
    );
    expect(
      (await filesUnder(blocked)).filter((f) => f.endsWith(".tmp")),
    ).toEqual([]);
  });

  it("fail the build, naming the cache, when a package record cannot be written", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    await mkdir(cacheDir);
    await writeFile(join(cacheDir, "package-trees"), "not a directory");
    await expect(
      build({ entries: ["src/main.ts"], cwd: app, cacheDir }),
    ).rejects.toMatchObject({
      code: "ENVPACK_INPUT_OUTPUT_UNWRITABLE",
      details: { destination: cacheDir },
    });
    expect(
      (await filesUnder(cacheDir)).filter((f) => f.endsWith(".tmp")),
    ).toEqual([]);
  });
});
