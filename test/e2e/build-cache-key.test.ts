// Build options that change a bundle's bytes are part of what the cache answers for.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Built {
  digest: string;
  inputDigest: string;
  key: string;
  source: string;
}

describe("build cache key", () => {
  it("a --level 1 bundle is not a hit for a plain build (nor the reverse); --threads stays out of the key", async () => {
    const app = await appCopy("hello");
    const env = { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") };
    const build = async (...flags: string[]) => {
      const run = await envpack(["build", "--json", "src/main.ts", ...flags], {
        cwd: app,
        env,
      });
      expect(run.exitCode, run.stderr).toBe(0);
      return JSON.parse(run.stdout) as Built;
    };
    const high = await build("--level", "1");
    const plain = await build();
    expect(plain.source).toBe("built");
    expect(plain.digest).not.toBe(high.digest);
    expect(plain.inputDigest).toBe(high.inputDigest);
    expect(plain.key).not.toBe(high.key);
    expect(await build("--level", "1")).toMatchObject({
      source: "cache",
      digest: high.digest,
    });
    expect(await build("--threads", "1")).toMatchObject({
      source: "cache",
      digest: plain.digest,
    });
  });
});
