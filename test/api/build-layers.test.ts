// build() writes layered bundles (format 3): an app edit packs only the app layer, apps with the
// same packages share that layer's blob, gc keeps what a kept bundle lists, and a format-2 blob
// left by an older envpack is neither read wrongly nor lost.

import { createHash } from "node:crypto";
import { readFile, readdir, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  build,
  cacheGc,
  cacheList,
  cacheRemove,
  run,
  scan,
  type BuildResult,
} from "../../src/api/index.js";
import { builtMeta } from "../../src/api/bundle-cache.js";
import { bundleKey } from "../../src/api/bundle-key.js";
import { planBundle } from "../../src/api/plan-bundle.js";
import type { Digest, EnvpackEvent } from "../../src/core/index.js";
import { writeBundle } from "../../packer/index.js";
import { LocalStore } from "../../src/registry/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Run inside a bundle: its tree has the node binary and the compiled app (bin/ is on PATH). */
const TREE_CHECK =
  'root=$(dirname "$(command -v envpack-app)")/..; test -x "$root/bin/node" && test -f "$root/app/src/main.js"';

const layerOf = (result: BuildResult, role: string) =>
  result.layers.find((l) => l.role === role);

async function editMain(app: string, line: string): Promise<void> {
  const main = join(app, "src", "main.ts");
  await writeFile(main, `${await readFile(main, "utf8")}${line}\n`);
}

async function buildHello(
  app: string,
  cacheDir: string,
  events?: EnvpackEvent[],
) {
  return build({
    entries: ["src/main.ts"],
    cwd: app,
    cacheDir,
    onEvent: events === undefined ? undefined : (e) => events.push(e),
  });
}

describe("layered builds", () => {
  it("an app edit repacks only the app layer and writes a new index; a cold build of the edit gives the same bytes", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const first = await buildHello(app, cacheDir);
    expect(first.layers.map((l) => [l.role, l.cached])).toEqual([
      ["runtime", false],
      ["packages", false],
      ["app", false],
    ]);
    await editMain(app, 'console.log("edited");');
    const edited = await buildHello(app, cacheDir);
    expect(edited.source).toBe("built");
    expect(edited.digest).not.toBe(first.digest);
    expect(edited.layers.map((l) => [l.role, l.cached])).toEqual([
      ["runtime", true],
      ["packages", true],
      ["app", false],
    ]);
    for (const role of ["runtime", "packages"])
      expect(layerOf(edited, role)).toMatchObject({
        digest: layerOf(first, role)?.digest,
      });
    expect(layerOf(edited, "app")?.digest).not.toBe(
      layerOf(first, "app")?.digest,
    );
    // Each blob is there once: two indexes, two app layers, one runtime, one packages.
    expect(await readdir(join(cacheDir, "blobs", "sha256"))).toHaveLength(6);

    const cold = await buildHello(app, join(await tempDir(), "cache"));
    expect(cold.digest).toBe(edited.digest);
    expect(cold.layers.map((l) => l.digest)).toEqual(
      edited.layers.map((l) => l.digest),
    );
  });

  it("two apps with the same packages share the packages layer's blob", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const a = await appCopy("hello");
    const b = await appCopy("hello");
    await editMain(b, 'console.log("another app");');
    const built = [
      await buildHello(a, cacheDir),
      await buildHello(b, cacheDir),
    ];
    expect(built[1]?.digest).not.toBe(built[0]?.digest);
    expect(layerOf(built[1] as BuildResult, "packages")).toMatchObject({
      digest: layerOf(built[0] as BuildResult, "packages")?.digest,
      cached: true,
    });
    const listing = await cacheList(cacheDir);
    expect(listing.bundles).toHaveLength(2);
    const shared = listing.layers.find(
      (l) => l.digest === layerOf(built[0] as BuildResult, "packages")?.digest,
    );
    expect(shared?.bundles.sort()).toEqual(built.map((r) => r.digest).sort());
    // Each layer counted once in the total.
    const blobs = await new LocalStore(cacheDir).list();
    expect(listing.bytes).toBe(blobs.reduce((sum, b) => sum + b.size, 0));
    expect(listing.layers).toHaveLength(4);
  });

  it("gc removes the least recently used bundle with only its own layers; the kept bundle stays a hit and runs", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const app = await appCopy("hello");
    const old = await buildHello(app, cacheDir);
    await run({ bundle: old.digest, cacheDir, command: ["true"] });
    await editMain(app, 'console.log("kept");');
    const kept = await buildHello(app, cacheDir);
    await run({ bundle: kept.digest, cacheDir, command: ["true"] });
    const listing = await cacheList(cacheDir);
    const keptBytes = listing.bundles.find(
      (b) => b.digest === kept.digest,
    )?.bytes;
    const gc = await cacheGc(cacheDir, keptBytes as number);
    expect(gc.removed).toEqual([old.digest]);
    expect(gc.layers).toEqual([layerOf(old, "app")?.digest]);
    expect(gc.kept).toBe(keptBytes);
    const envs = await readdir(join(cacheDir, "envs", "layers"));
    expect(envs.sort()).toEqual(
      kept.layers.map((l) => l.digest.slice(7)).sort(),
    );

    const again = await buildHello(app, cacheDir);
    expect(again).toMatchObject({ source: "cache", digest: kept.digest });
    const ran = await run({
      bundle: kept.digest,
      cacheDir,
      command: ["sh", "-c", TREE_CHECK],
    });
    expect(ran.exitCode).toBe(0);

    // rm refuses a layer a bundle lists, and takes a bundle's last layers along.
    await expect(
      cacheRemove(cacheDir, [layerOf(kept, "runtime")?.digest as string]),
    ).rejects.toMatchObject({ code: "ENVPACK_USAGE_BAD_ARGUMENT" });
    const removed = await cacheRemove(cacheDir, [kept.digest]);
    expect(removed.layers).toHaveLength(3);
    expect(await readdir(join(cacheDir, "blobs", "sha256"))).toEqual([]);
  });

  it("a truncated layer is dropped with a warning and packed again", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const first = await buildHello(app, cacheDir);
    const packages = layerOf(first, "packages")?.digest as Digest;
    await truncate(join(cacheDir, "blobs", "sha256", packages.slice(7)), 10);
    const events: EnvpackEvent[] = [];
    const again = await buildHello(app, cacheDir, events);
    expect(again).toMatchObject({ source: "built", digest: first.digest });
    expect(layerOf(again, "packages")).toMatchObject({ cached: false });
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "warn",
        code: "ENVPACK_WARN_CACHE_DAMAGED",
        data: expect.objectContaining({ digest: packages }),
      }),
    );
  });

  it("a format-2 bundle in the cache still runs and is listed; its app is built again as format 3 with a warning", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    // The cache of an older envpack: one blob, recorded under the format-2 key.
    const manifest = await scan({ entries: ["src/main.ts"], cwd: app });
    const plan = await planBundle(manifest, { cacheDir });
    const store = new LocalStore(cacheDir);
    const written = await writeBundle({
      leading: plan.leading,
      entries: plan.entries,
      outDir: join(cacheDir, "tmp"),
    });
    const blob = await store.putFile(written.path, written.digest);
    const inputDigest = manifest.inputDigest as Digest;
    await store.record({
      key: bundleKey(inputDigest, {}, 2),
      inputDigest,
      digest: blob.digest,
      size: blob.size,
      usedAt: Date.now(),
      meta: {
        ...builtMeta("node"),
        builder: "envpack@0.0.0 bundle-format@2",
        format: "2",
      },
    });

    const events: EnvpackEvent[] = [];
    const built = await buildHello(app, cacheDir, events);
    expect(built.source).toBe("built");
    expect(built.digest).not.toBe(blob.digest);
    expect(events).toContainEqual(
      expect.objectContaining({
        code: "ENVPACK_WARN_CACHE_OLD_FORMAT",
        data: { digest: blob.digest, format: 2 },
      }),
    );
    const listing = await cacheList(cacheDir);
    expect(listing.bundles.map((b) => [b.digest, b.format]).sort()).toEqual(
      [
        [blob.digest, 2],
        [built.digest, 3],
      ].sort(),
    );
    const ran = await run({
      bundle: blob.digest,
      cacheDir,
      command: ["sh", "-c", TREE_CHECK],
    });
    expect(ran.exitCode).toBe(0);
    const gc = await cacheGc(cacheDir, 0);
    expect(gc.removed.sort()).toEqual([blob.digest, built.digest].sort());
    expect(await readdir(join(cacheDir, "blobs", "sha256"))).toEqual([]);
  });

  it("a build aborted while its layers pack on the shared worker leaves no partial blob or temp", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const controller = new AbortController();
    const reason = new Error("stop");
    await expect(
      build({
        entries: ["src/main.ts"],
        cwd: app,
        cacheDir,
        signal: controller.signal,
        // The node binary is packing: the abort lands mid-layer.
        onEvent: (e) => {
          if (e.type === "build:progress" && e.phase === "pack")
            controller.abort(reason);
        },
      }),
    ).rejects.toBe(reason);
    const filesIn = async (dir: string) =>
      (
        await readdir(join(cacheDir, dir), {
          recursive: true,
          withFileTypes: true,
        }).catch(() => [])
      ).filter((e) => e.isFile());
    expect(
      (await filesIn("tmp")).map((e) => join(e.parentPath, e.name)),
    ).toEqual([]);
    // A layer finished before the abort may stay, whole: every blob left is named by its bytes.
    const blobs = await filesIn("blobs");
    expect(blobs.map((b) => b.name)).not.toContain(
      layerOf(await buildHello(app, await tempDir()), "runtime")?.digest.slice(
        7,
      ),
    );
    for (const blob of blobs)
      expect(
        createHash("sha256")
          .update(await readFile(join(blob.parentPath, blob.name)))
          .digest("hex"),
      ).toBe(blob.name);
    // The next build into the same cache packs what the aborted one did not finish.
    const again = await buildHello(app, cacheDir);
    expect(layerOf(again, "runtime")?.cached).toBe(false);
  });
});
