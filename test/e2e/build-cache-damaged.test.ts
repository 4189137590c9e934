// A damaged cached bundle is never handed out: build rebuilds it, run and push drop it.

import { randomBytes } from "node:crypto";
import { readFile, readdir, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { hashFile } from "../../src/core/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Built {
  digest: `sha256:${string}`;
  source: string;
  path: string;
  layers: Array<{ digest: string }>;
}

/** The blobs a bundle's layers leave in the cache once its damaged index is dropped. */
const layerBlobs = (built: Built) =>
  built.layers.map((l) => l.digest.slice(7)).sort();

async function flipByte(file: string): Promise<void> {
  const bytes = await readFile(file);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  await writeFile(file, bytes);
}

async function setup() {
  const app = await appCopy("hello");
  const cache = join(await tempDir(), "cache");
  const env = { ENVPACK_CACHE_DIR: cache };
  const build = async (...flags: string[]) => {
    const run = await envpack(["build", "--json", "src/main.ts", ...flags], {
      cwd: app,
      env,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    return { ...(JSON.parse(run.stdout) as Built), stderr: run.stderr };
  };
  const first = await build();
  const blob = join(cache, "blobs", "sha256", first.digest.slice(7));
  return { app, cache, env, build, first, blob };
}

// The bundle's blob here is its index (format 3): its layers are intact and stay cached.
describe("a damaged cached bundle", () => {
  it("truncated or emptied: the next build drops it (with a warning) and rebuilds the right bytes", async () => {
    const { build, first, blob } = await setup();
    for (const damage of [
      () => truncate(blob, 1000),
      () => writeFile(blob, ""),
    ]) {
      await damage();
      const again = await build();
      expect(again.source).toBe("built");
      expect(again.digest).toBe(first.digest);
      expect(again.stderr).toContain("ENVPACK_WARN_CACHE_DAMAGED");
      expect((await hashFile(blob)).digest).toBe(first.digest);
    }
  });

  it("a flipped byte is not exported: build --out rebuilds and copies verified bytes", async () => {
    const { build, first, blob } = await setup();
    await flipByte(blob);
    const out = await tempDir();
    const exported = await build("--out", out);
    expect(exported.source).toBe("built");
    expect((await hashFile(exported.path)).digest).toBe(first.digest);
    expect(await build()).toMatchObject({ source: "cache" });
  });

  it("run of a flipped blob: IntegrityError, and the blob and its index record are dropped", async () => {
    const { build, cache, env, first, blob } = await setup();
    await flipByte(blob);
    const run = await envpack(["run", "--json", first.digest, "--", "true"], {
      env,
    });
    expect(run.exitCode).toBe(1);
    expect(
      (JSON.parse(run.stdout) as { error: { code: string } }).error.code,
    ).toBe("ENVPACK_INTEGRITY_DIGEST_MISMATCH");
    expect((await readdir(join(cache, "blobs", "sha256"))).sort()).toEqual(
      layerBlobs(first),
    );
    // Only the layers' records are left (one per layer key).
    expect(await readdir(join(cache, "index", "sha256"))).toHaveLength(
      first.layers.length,
    );
    expect(await build()).toMatchObject({
      source: "built",
      digest: first.digest,
    });
  });

  it("run of a flipped layer: IntegrityError, and that layer alone is dropped, then packed again", async () => {
    const { build, cache, env, first } = await setup();
    const app = first.layers.at(-1)?.digest.slice(7) as string;
    await flipByte(join(cache, "blobs", "sha256", app));
    const run = await envpack(["run", "--json", first.digest, "--", "true"], {
      env,
    });
    expect(run.exitCode).toBe(1);
    expect(
      (JSON.parse(run.stdout) as { error: { code: string } }).error.code,
    ).toBe("ENVPACK_INTEGRITY_DIGEST_MISMATCH");
    const left = await readdir(join(cache, "blobs", "sha256"));
    expect(left).not.toContain(app);
    expect(left).toContain(first.digest.slice(7));
    expect(await build()).toMatchObject({
      source: "built",
      digest: first.digest,
    });
  });

  it("push of a flipped blob to OCI: IntegrityError naming the blob (not a registry problem), blob dropped", async () => {
    const { cache, env, first, blob } = await setup();
    await flipByte(blob);
    const url = `oci://${inject("registry").openHost}/t-${randomBytes(6).toString("hex")}`;
    const run = await envpack(
      ["push", "--json", first.digest, "--registry", url, "--insecure"],
      { env },
    );
    expect(run.exitCode).toBe(1);
    const { error } = JSON.parse(run.stdout) as {
      error: { code: string; message: string };
    };
    expect(error.code).toBe("ENVPACK_INTEGRITY_DIGEST_MISMATCH");
    expect(error.message).toContain(first.digest);
    expect((await readdir(join(cache, "blobs", "sha256"))).sort()).toEqual(
      layerBlobs(first),
    );
  });
});
