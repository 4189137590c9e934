// A package edited in place after install (patch-package, a local fix) changes the input digest.

import {
  appendFile,
  cp,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";
import { INSTALLED } from "../helpers/installed.js";

interface Built {
  digest: string;
  inputDigest: string;
  source: string;
}

/** `envpack build --json` of the app, in a cache of its own. */
async function builder(app: string): Promise<() => Promise<Built>> {
  const env = { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") };
  return async () => {
    const run = await envpack(["build", "--json", "src/main.ts"], {
      cwd: app,
      env,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as Built;
  };
}

describe("a package edited in node_modules", () => {
  it("is rebuilt with a new input digest; restoring it (bytes and times) gives the first bundle back from the cache", async () => {
    const app = await appCopy("hello");
    const build = await builder(app);
    const file = join(app, "node_modules", "ms", "index.js");
    // Whole seconds, which utimes can set back exactly.
    await utimes(file, INSTALLED, INSTALLED);
    const original = await readFile(file);
    const first = await build();
    await appendFile(file, "\nmodule.exports.patched = true;\n");

    const patched = await build();
    expect(patched.source).toBe("built");
    expect(patched.inputDigest).not.toBe(first.inputDigest);
    expect(patched.digest).not.toBe(first.digest);
    expect(await build()).toMatchObject({
      source: "cache",
      digest: patched.digest,
    });

    // Undone in place, times included (as a backup restore would): the package is as installed.
    await writeFile(file, original);
    await utimes(file, INSTALLED, INSTALLED);
    expect(await build()).toMatchObject({
      source: "cache",
      inputDigest: first.inputDigest,
      digest: first.digest,
    });
  });

  it("is not taken for an edit after a reinstall: new times and inodes, the same bytes", async () => {
    const app = await appCopy("hello");
    const build = await builder(app);
    const first = await build();
    // As `npm ci` leaves it: every file (npm's hidden lockfile too) written anew.
    const modules = join(app, "node_modules");
    const before = await stat(join(modules, "ms", "index.js"));
    await cp(modules, `${modules}.new`, { recursive: true });
    await rm(modules, { recursive: true });
    await rename(`${modules}.new`, modules);
    const after = await stat(join(modules, "ms", "index.js"));
    expect(after.ino).not.toBe(before.ino);

    expect(await build()).toMatchObject({
      source: "cache",
      inputDigest: first.inputDigest,
      digest: first.digest,
    });
  });
});
