// `envpack run` with layered bundles (format 3): from the cache by digest, from an index file with
// its layers beside it, and a damaged layer in the cache dropped with a coded error.

import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LocalStore } from "../../src/registry/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import {
  cacheLayeredApp,
  cachedBlob,
  writeLayeredApp,
} from "../helpers/layered-app.js";
import { tempDir } from "../helpers/temp-dir.js";

describe("envpack run with a layered bundle", () => {
  it("runs it by digest from the cache and from its index file; a damaged layer is dropped, nothing is unpacked", async () => {
    const app = await appCopy("hello");
    const work = await tempDir("envpack-run-layers-");
    const out = join(work, "out");
    const bundle = await writeLayeredApp(["src/main.ts"], app, out, {
      cacheDir: join(work, "build-cache"),
    });
    const cache = join(work, "cache");
    await cacheLayeredApp(cache, bundle);
    const env = { ENVPACK_CACHE_DIR: cache };
    const byDigest = await envpack(["run", bundle.digest], { cwd: app, env });
    expect(byDigest.exitCode, byDigest.stderr).toBe(0);
    expect(byDigest.stdout).toContain("hello, world");

    const other = join(work, "other-cache");
    const byFile = await envpack(
      ["run", bundle.path, "--", "node", "-p", "process.execPath"],
      { cwd: app, env: { ENVPACK_CACHE_DIR: other } },
    );
    expect(byFile.exitCode).toBe(0);
    expect(byFile.stdout.trim()).toBe(
      join(other, "envs", bundle.digest.slice(7), "bin", "node"),
    );

    // The app layer's bytes flipped in a fresh cache: refused before anything is unpacked.
    const damaged = join(work, "damaged-cache");
    await cacheLayeredApp(damaged, bundle);
    const app_ = bundle.index.layers.find((l) => l.role === "app");
    if (app_ === undefined) throw new Error("no app layer");
    const blob = cachedBlob(damaged, app_.digest);
    const bytes = await readFile(blob);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    await writeFile(blob, bytes);
    const refused = await envpack(["run", bundle.digest, "--json"], {
      cwd: app,
      env: { ENVPACK_CACHE_DIR: damaged },
    });
    expect(refused.exitCode).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({
      ok: false,
      error: { code: "ENVPACK_INTEGRITY_DIGEST_MISMATCH" },
    });
    expect(await new LocalStore(damaged).has(app_.digest)).toBe(false);
    await expect(
      stat(join(damaged, "envs", bundle.digest.slice(7))),
    ).rejects.toMatchObject({ code: "ENOENT" });
  });
});
