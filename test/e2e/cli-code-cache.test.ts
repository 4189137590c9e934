// The command line's code cache (src/cli/code-cache.ts): a run leaves V8's compiled form of the
// CLI's CommonJS files, the next run of the same command uses it, and a cache that is missing,
// damaged, unwritable or turned off changes nothing the user sees. Real processes throughout.

import { readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Where a run with ENVPACK_CODE_CACHE=root keeps its data: one directory per Node and arch. */
const versionDir = (root: string) =>
  join(root, `${process.version}-${process.arch}`);

/** Which installation the bundled CLI is: its directory's inode. */
const installOf = async () =>
  (await stat(join(BIN, ".."), { bigint: true })).ino;

/** The cache file of the bundled CLI file `name` (cli, errors...) for `command`. */
async function cacheFileOf(name: string, command: string): Promise<string> {
  const st = await stat(join(BIN, "..", `${name}.js`), { bigint: true });
  return `${name}-${await installOf()}-${st.ino}-${st.size}-${st.mtimeNs}-${st.ctimeNs}-${command}.bin`;
}

/** A cache file name of `name` for other contents of it, in this installation or another. */
const olderOf = async (name: string, command: string, install?: bigint) =>
  `${name}-${install ?? (await installOf())}-1-2-3-4-${command}.bin`;

describe("code cache", () => {
  it("is written by a successful run and used, not rewritten, by the next", async () => {
    const root = await tempDir();
    const env = { ENVPACK_CODE_CACHE: root };
    const first = await envpack(["--help"], { env });
    expect(first.exitCode, first.stderr).toBe(0);
    const dir = versionDir(root);
    const cli = join(dir, await cacheFileOf("cli", "none"));
    expect((await readdir(dir)).sort()).toEqual(
      [cli, join(dir, await cacheFileOf("errors", "none"))]
        .map((p) => p.slice(dir.length + 1))
        .sort(),
    );
    const written = await stat(cli);
    expect(written.size).toBeGreaterThan(1000);

    const second = await envpack(["--help"], { env });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    // Refused data would have been replaced (a new file renamed over it).
    expect((await stat(cli)).ino).toBe(written.ino);
  });

  it("keeps one cache per command", async () => {
    const root = await tempDir();
    const env = {
      ENVPACK_CODE_CACHE: root,
      ENVPACK_CACHE_DIR: join(await tempDir(), "cache"),
    };
    expect((await envpack(["--help"], { env })).exitCode).toBe(0);
    expect((await envpack(["cache", "ls", "--json"], { env })).exitCode).toBe(
      0,
    );
    const files = await readdir(versionDir(root));
    expect(files).toContain(await cacheFileOf("cli", "none"));
    expect(files).toContain(await cacheFileOf("cli", "cache"));
  });

  it("replaces damaged data, and the data of the file's older contents in this installation", async () => {
    const root = await tempDir();
    const env = { ENVPACK_CODE_CACHE: root };
    const dir = versionDir(root);
    const reference = await envpack(["--help"], {
      env: { ENVPACK_CODE_CACHE: "off" },
    });
    const cli = join(dir, await cacheFileOf("cli", "none"));
    const older = join(dir, await olderOf("cli", "none"));
    const otherCommand = join(dir, await olderOf("cli", "build"));
    const otherInstall = join(dir, await olderOf("cli", "none", 1n));
    await envpack(["--help"], { env });
    for (const file of [cli, older, otherCommand, otherInstall])
      await writeFile(file, "not V8's code cache");

    const run = await envpack(["--help"], { env });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe(reference.stdout);
    expect((await readFile(cli)).toString()).not.toBe("not V8's code cache");
    const files = await readdir(dir);
    expect(files).not.toContain(await olderOf("cli", "none"));
    // Another command's data is that command's to replace, another installation's its own.
    expect(files).toContain(await olderOf("cli", "build"));
    expect(files).toContain(await olderOf("cli", "none", 1n));
  });

  it("writes nothing for a failed command, or when turned off", async () => {
    const failedRoot = await tempDir();
    const failed = await envpack(["build", "--no-such-flag"], {
      env: { ENVPACK_CODE_CACHE: failedRoot },
    });
    expect(failed.exitCode).toBe(2);
    expect(await readdir(failedRoot)).toEqual([]);

    const home = await tempDir();
    const off = await envpack(["--help"], {
      env: { ENVPACK_CODE_CACHE: "off", XDG_CACHE_HOME: home },
    });
    expect(off.exitCode, off.stderr).toBe(0);
    expect(await readdir(home)).toEqual([]);
  });

  it("defaults to XDG_CACHE_HOME/envpack-code", async () => {
    const home = await tempDir();
    const run = await envpack(["--help"], {
      env: { ENVPACK_CODE_CACHE: "", XDG_CACHE_HOME: home },
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(await readdir(versionDir(join(home, "envpack-code")))).toContain(
      await cacheFileOf("cli", "none"),
    );
  });

  it("runs as usual when its directory cannot be made", async () => {
    const parent = await tempDir();
    const blocked = join(parent, "a-file");
    await writeFile(blocked, "");
    const run = await envpack(["--help"], {
      env: { ENVPACK_CODE_CACHE: blocked },
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toBe("");
    expect(run.stdout).toContain("Usage: envpack");
  });
});
