// The build cache through the CLI: concurrent builds, ls, rm and gc.

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

const json = <T>(stdout: string) => JSON.parse(stdout) as T;

describe("envpack cache", () => {
  it("two builds of the same input at once both succeed and leave one blob per layer and the index", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const env = { ENVPACK_CACHE_DIR: cache };
    const [a, b] = await Promise.all([
      envpack(["build", "--json", "src/main.ts"], { cwd: app, env }),
      envpack(["build", "--json", "src/main.ts"], { cwd: app, env }),
    ]);
    expect([a?.exitCode, b?.exitCode]).toEqual([0, 0]);
    const built = json<{ digest: string; layers: unknown[] }>(a!.stdout);
    expect(built.digest).toBe(json<{ digest: string }>(b!.stdout).digest);
    expect(await readdir(join(cache, "blobs", "sha256"))).toHaveLength(
      1 + built.layers.length,
    );
    expect(await readdir(join(cache, "tmp"))).toEqual([]);
  });

  it("ls lists bundles; rm removes a bundle and its environment; gc fits a size; bad input exits 2", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const env = { ENVPACK_CACHE_DIR: cache };
    const { digest } = json<{ digest: string }>(
      (await envpack(["build", "--json", "src/main.ts"], { cwd: app, env }))
        .stdout,
    );
    expect(
      (await envpack(["run", digest, "--", "true"], { env })).exitCode,
    ).toBe(0);
    expect((await readdir(join(cache, "envs"))).sort()).toEqual([
      digest.slice(7),
      "layers",
    ]);

    const ls = json<{
      bundles: Array<{ digest: string; size: number }>;
      memo: { files: number; bytes: number };
    }>((await envpack(["cache", "ls", "--json"], { env })).stdout);
    expect(ls.bundles.map((b) => b.digest)).toEqual([digest]);
    expect(ls.memo.files).toBeGreaterThan(0);

    const rm = await envpack(["cache", "rm", "--json", digest], { env });
    expect(json<{ removed: string[] }>(rm.stdout).removed).toEqual([digest]);
    // Its layers went with it (no other bundle lists them), unpacked copies included.
    expect(await readdir(join(cache, "envs"))).toEqual(["layers"]);
    expect(await readdir(join(cache, "envs", "layers"))).toEqual([]);
    expect(await readdir(join(cache, "blobs", "sha256"))).toEqual([]);

    await envpack(["build", "src/main.ts"], { cwd: app, env });
    const gc = json<{
      removed: string[];
      kept: number;
      memo: { files: number; bytes: number };
    }>(
      (await envpack(["cache", "gc", "--json", "--max-size", "0"], { env }))
        .stdout,
    );
    expect(gc.removed).toEqual([digest]);
    expect(gc.kept).toBe(0);
    // Every memo entry went with the last bundle (package-trees records of a live project stay).
    expect(gc.memo.files).toBeGreaterThan(0);
    expect(await readdir(join(cache, "fingerprints"))).toEqual([]);

    const bad = await Promise.all([
      envpack(["cache", "rm", "--json", "not-a-digest"], { env }),
      envpack(["cache", "gc", "--json", "--max-size", "lots"], { env }),
      envpack(["run", "--json", `sha256:${"0".repeat(64)}`], { env }),
    ]);
    expect(bad.map((r) => r.exitCode)).toEqual([2, 2, 2]);
    expect(
      bad.map((r) => json<{ error: { code: string } }>(r.stdout).error.code),
    ).toEqual([
      "ENVPACK_USAGE_BAD_ARGUMENT",
      "ENVPACK_USAGE_BAD_ARGUMENT",
      "ENVPACK_INPUT_ENTRY_NOT_FOUND",
    ]);
  });
});
