// build({ registry }), push() and pull() through the library: what a hit takes, what a corrupting
// registry leaves behind, and what push refuses.

import { randomBytes } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { build, pull, push } from "../../src/api/index.js";
import { hashFile, type Digest } from "../../src/core/index.js";
import { BUNDLE_FORMAT } from "../../packer/index.js";
import { LocalStore, openRegistry } from "../../src/registry/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { startProxy } from "../helpers/http-proxy.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Every file under `dir`, relative, sorted ([] when it does not exist). */
async function filesIn(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, {
      recursive: true,
      withFileTypes: true,
    });
    return entries
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

describe("registry use cases", () => {
  it("fails a build on corrupted bytes from the registry and caches nothing of them", async () => {
    const host = inject("registry").openHost;
    const url = `oci://${host}/t-${randomBytes(6).toString("hex")}`;
    const app = await appCopy("hello");
    const published = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
      registry: { url, insecure: true },
    });
    expect(published).toMatchObject({ source: "built", pushed: true });

    const corrupting = await startProxy({
      target: host,
      decide: (req) => ({
        forward: true,
        corrupt: req.method === "GET" && (req.url ?? "").includes("/blobs/"),
      }),
    });
    const cacheDir = join(await tempDir(), "cache");
    try {
      await expect(
        build({
          entries: ["src/main.ts"],
          cwd: app,
          cacheDir,
          registry: { url: url.replace(host, corrupting.host), insecure: true },
        }),
      ).rejects.toMatchObject({
        code: "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
        exitCode: 1,
      });
    } finally {
      await corrupting.close();
    }
    expect(await filesIn(join(cacheDir, "blobs"))).toEqual([]);
    expect(await filesIn(join(cacheDir, "index"))).toEqual([]);
    expect(await filesIn(join(cacheDir, "tmp"))).toEqual([]);

    const honest = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir,
      registry: { url, insecure: true },
    });
    expect(honest).toMatchObject({
      source: "registry",
      digest: published.digest,
    });
  });

  it("builds over an entry of another bundle format and publishes this one's", async () => {
    const dir = join(await tempDir(), "registry");
    const registry = openRegistry(dir);
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const first = await build({ entries: ["src/main.ts"], cwd: app, cacheDir });
    const stale = join(await tempDir(), "stale.tar.zst");
    await writeFile(stale, randomBytes(4096));
    const staleBlob = await hashFile(stale);
    await registry.push(stale, {
      digest: staleBlob.digest,
      size: staleBlob.size,
      inputDigest: first.key,
      meta: { format: String(BUNDLE_FORMAT + 1) },
    });

    const rebuilt = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
      registry: { url: dir },
    });
    expect(rebuilt).toMatchObject({
      source: "built",
      pushed: true,
      digest: first.digest,
    });
    expect(await registry.lookup(first.key)).toMatchObject({
      digest: first.digest,
      meta: { format: String(BUNDLE_FORMAT) },
    });
  });

  it("pushes only what the cache holds with an input digest, and pulls what the registry holds", async () => {
    const dir = join(await tempDir(), "registry");
    const cacheDir = join(await tempDir(), "cache");
    const absent: Digest = `sha256:${"a".repeat(64)}`;
    await expect(
      push({ digest: absent, registry: { url: dir }, cacheDir }),
    ).rejects.toMatchObject({
      code: "ENVPACK_INPUT_ENTRY_NOT_FOUND",
      exitCode: 2,
      hint: expect.stringContaining("envpack build"),
    });
    // A blob pulled by digest has no input digest: there is nothing to publish it under.
    const file = join(await tempDir(), "bundle.tar.zst");
    await writeFile(file, randomBytes(2048));
    const blob = await hashFile(file);
    await new LocalStore(cacheDir).putFile(file, blob.digest);
    await expect(
      push({ digest: blob.digest, registry: { url: dir }, cacheDir }),
    ).rejects.toMatchObject({ code: "ENVPACK_INPUT_ENTRY_NOT_FOUND" });
    await expect(
      pull({ inputDigest: absent, registry: { url: dir }, cacheDir }),
    ).rejects.toMatchObject({ code: "ENVPACK_INPUT_ENTRY_NOT_FOUND" });
    await expect(
      pull({
        digest: absent,
        inputDigest: absent,
        registry: { url: dir },
        cacheDir,
      }),
    ).rejects.toMatchObject({ code: "ENVPACK_USAGE_BAD_ARGUMENT" });
  });
});
