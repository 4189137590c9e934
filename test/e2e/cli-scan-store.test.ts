// `envpack scan` remembers what it found in installed packages, and their tree walks, under the
// cache directory, as builds do: the same manifest every time, a package file edited in place read
// again, and a cache that cannot be written costs nothing but the memory.

import { appendFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Scanned {
  inputDigest: string;
  unresolved: Array<{ specifier: string; package?: string }>;
}

async function scanJson(app: string, cacheDir: string): Promise<string> {
  const run = await envpack(["scan", "--json", "src/main.ts"], {
    cwd: app,
    env: { ENVPACK_CACHE_DIR: cacheDir },
  });
  expect(run.exitCode, run.stderr).toBe(0);
  return run.stdout;
}

describe("envpack scan with a cache directory", () => {
  it("prints the same manifest from a warm store, and reads a package file edited in place again", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const first = await scanJson(app, cacheDir);
    for (const store of ["npm", "walks"])
      expect(
        (await readdir(join(cacheDir, "scan", store))).length,
      ).toBeGreaterThan(0);
    expect(await scanJson(app, cacheDir)).toBe(first);
    expect(await scanJson(app, join(await tempDir(), "other"))).toBe(first);

    // In place: same inode, same directory times; only the file's own stats change.
    await appendFile(
      join(app, "node_modules", "ms", "index.js"),
      '\nrequire("./envpack-added-helper");\n',
    );
    const edited = JSON.parse(await scanJson(app, cacheDir)) as Scanned;
    expect(edited.unresolved).toContainEqual(
      expect.objectContaining({ specifier: "./envpack-added-helper" }),
    );
  });

  it("scans as without a store when the cache directory cannot be written", async () => {
    const app = await appCopy("hello");
    const blocked = join(await tempDir(), "cache");
    // A file where the cache directory should be: no store can be made under it (even as root).
    await writeFile(blocked, "not a directory\n");
    const run = await envpack(["scan", "--json", "src/main.ts"], {
      cwd: app,
      env: { ENVPACK_CACHE_DIR: blocked },
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe(
      await scanJson(app, join(await tempDir(), "cache")),
    );
  });
});
