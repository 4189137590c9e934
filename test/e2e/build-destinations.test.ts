// build's destinations (--out, --cache-dir) that cannot be written end in coded errors, not bugs.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Failure {
  ok: false;
  error: { code: string; message: string; details?: { destination?: string } };
}

describe("build destinations", () => {
  it("--out under a regular file: exit 2, ENVPACK_INPUT_OUTPUT_UNWRITABLE naming --out", async () => {
    const app = await appCopy("hello");
    const dir = await tempDir();
    const file = join(dir, "a-file");
    await writeFile(file, "not a directory");
    const out = join(file, "bundles");
    const run = await envpack(
      ["build", "--json", "src/main.ts", "--out", out],
      { cwd: app, env: { ENVPACK_CACHE_DIR: join(dir, "cache") } },
    );
    expect(run.exitCode).toBe(2);
    const failure = JSON.parse(run.stdout) as Failure;
    expect(failure.error.code).toBe("ENVPACK_INPUT_OUTPUT_UNWRITABLE");
    expect(failure.error.details?.destination).toBe(out);
    expect(run.stderr).not.toContain("please report");
  });

  it("--cache-dir that is a regular file: exit 2, ENVPACK_INPUT_OUTPUT_UNWRITABLE naming the cache", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    await writeFile(cache, "not a directory");
    const run = await envpack(["build", "--json", "src/main.ts"], {
      cwd: app,
      env: { ENVPACK_CACHE_DIR: cache },
    });
    expect(run.exitCode).toBe(2);
    const failure = JSON.parse(run.stdout) as Failure;
    expect(failure.error.code).toBe("ENVPACK_INPUT_OUTPUT_UNWRITABLE");
    expect(failure.error.details?.destination).toBe(cache);
  });
});
