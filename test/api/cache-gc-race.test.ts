// `cache gc` against a build running meanwhile, and what gc prunes besides blobs: index records
// no lookup can use, and the Node runtimes `--node` builds fetch. A build that loses a blob to gc
// packs it again; gc never leaves a build with a wrong bundle.

import { spawnSync } from "node:child_process";
import { mkdir, readdir, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  build,
  cacheGc,
  cacheRemove,
  scan,
  type BuildResult,
} from "../../src/api/index.js";
import { buildLayers } from "../../src/api/build-layers.js";
import { builderIdentity } from "../../src/api/bundle-cache.js";
import { bundleKey } from "../../src/api/bundle-key.js";
import { layerKeys } from "../../src/api/layer-keys.js";
import type { Digest, Manifest } from "../../src/core/index.js";
import { openBundleWriter } from "../../packer/index.js";
import { LocalStore, type IndexRecord } from "../../src/registry/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const BIG = 10 * 1024 ** 3;

/**
 * A store that runs `act` (once) at the first step of a build `when` picks, before that step goes
 * on, as a gc in another process could; the build's other store steps wait until `act` is done.
 */
class RacedStore extends LocalStore {
  #race: (step: "put" | "record", key?: Digest) => Promise<void>;

  constructor(
    root: string,
    when: (step: "put" | "record", key?: Digest) => boolean,
    act: () => Promise<unknown>,
  ) {
    super(root);
    let acting: Promise<unknown> | undefined;
    this.#race = async (step, key) => {
      if (acting === undefined && when(step, key)) acting = act();
      await acting;
    };
  }

  override async putFile(
    ...args: Parameters<LocalStore["putFile"]>
  ): ReturnType<LocalStore["putFile"]> {
    await this.#race("put");
    return super.putFile(...args);
  }

  override async record(record: IndexRecord): Promise<void> {
    await this.#race("record", record.key);
    return super.record(record);
  }
}

/** Builds the app's layered bundle into `store` as build() does, its blobs then checked. */
async function buildInto(
  store: LocalStore,
  manifest: Manifest,
): Promise<{ digest: Digest; layers: Array<[string, Digest, boolean]> }> {
  const tmp = join(store.root, "tmp", `build-${process.pid}-0123ab`);
  const built = await buildLayers({
    store,
    manifest,
    keys: layerKeys(manifest, builderIdentity(), {}),
    bundleKey: bundleKey(manifest.inputDigest as Digest),
    plan: { cacheDir: store.root },
    openWriter: () => openBundleWriter({ outDir: tmp, inThread: true }),
    tmp,
  });
  for (const blob of [
    { digest: built.digest, size: built.indexSize },
    ...built.layers,
  ])
    expect(await store.sizeOf(blob.digest), blob.digest).toBe(blob.size);
  return {
    digest: built.digest,
    layers: built.layers.map((l) => [l.role, l.digest, l.cached]),
  };
}

const digestsOf = (r: BuildResult) =>
  r.layers.map((l) => [l.role, l.digest, l.cached]);

describe("cache gc racing a build", () => {
  it("a layer gc removes before the build records it is packed again", async () => {
    const app = await appCopy("hello");
    const manifest = await scan({ entries: ["src/main.ts"], cwd: app });
    const cacheDir = join(await tempDir(), "cache");
    const clean = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
    });
    // gc runs once the first layer is in the store, before its record: it is no bundle's yet.
    const store = new RacedStore(
      cacheDir,
      (step) => step === "record",
      () => cacheGc(cacheDir, 0),
    );
    const built = await buildInto(store, manifest);
    expect(built.digest).toBe(clean.digest);
    expect(built.layers.map(([role, digest]) => [role, digest])).toEqual(
      clean.layers.map((l) => [l.role, l.digest]),
    );
    const hit = await build({ entries: ["src/main.ts"], cwd: app, cacheDir });
    expect(hit.cached).toBe(true);
    expect(hit.digest).toBe(clean.digest);
  });

  it("the index a build records last is put again when gc removed it", async () => {
    const app = await appCopy("hello");
    const manifest = await scan({ entries: ["src/main.ts"], cwd: app });
    const cacheDir = join(await tempDir(), "cache");
    const key = bundleKey(manifest.inputDigest as Digest);
    const store = new RacedStore(
      cacheDir,
      (step, recorded) => step === "record" && recorded === key,
      () => cacheGc(cacheDir, 0),
    );
    const built = await buildInto(store, manifest);
    expect((await store.lookup(key))?.digest).toBe(built.digest);
  });

  it("layers a build reuses from the cache and gc then removes are packed again, not listed missing", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const v1 = await build({ entries: ["src/main.ts"], cwd: app, cacheDir });
    const main = join(app, "src", "main.ts");
    await writeFile(main, "console.log('v2');\n", { flag: "a" });
    const manifest = await scan({ entries: ["src/main.ts"], cwd: app });
    // v2 reuses v1's runtime and packages layers; gc then removes v1 (least recently used) and
    // with it the layers only v1 lists, before v2's index names them.
    const store = new RacedStore(
      cacheDir,
      (step) => step === "put",
      () => cacheRemove(cacheDir, [v1.digest]),
    );
    const built = await buildInto(store, manifest);
    const clean = await build({
      entries: ["src/main.ts"],
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
    });
    expect(built.digest).toBe(clean.digest);
    expect(built.layers.map(([role, , cached]) => [role, cached])).toEqual([
      ["runtime", false],
      ["packages", false],
      // Packed and recorded before the loss was seen: found under its key the second time.
      ["app", true],
    ]);
    expect(
      digestsOf(v1)
        .slice(0, 2)
        .map(([, d]) => d),
    ).toEqual(built.layers.slice(0, 2).map(([, d]) => d));
  });
});

describe("cache gc prunes", () => {
  it("index records no lookup can use: written before keys, unreadable, or of a blob that is gone", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const built = await build({ entries: ["src/main.ts"], cwd: app, cacheDir });
    const dir = join(cacheDir, "index", "sha256");
    const live = (await readdir(dir)).sort();
    const hex = (n: number) => n.toString(16).padStart(64, "0");
    // Keyed by the bare input digest, as before bundle keys, pointing at a kept blob.
    await writeFile(
      join(dir, `${hex(1)}.json`),
      JSON.stringify({
        inputDigest: built.inputDigest,
        digest: built.digest,
        size: 1,
        usedAt: Date.now(),
      }),
    );
    await writeFile(join(dir, `${hex(2)}.json`), "{ truncated");
    await writeFile(
      join(dir, `${hex(3)}.json`),
      JSON.stringify({
        key: `sha256:${hex(3)}`,
        inputDigest: built.inputDigest,
        digest: `sha256:${hex(4)}`,
        size: 1,
        usedAt: Date.now(),
      }),
    );
    const result = await cacheGc(cacheDir, BIG);
    expect(result.removed).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual(live);
    const hit = await build({ entries: ["src/main.ts"], cwd: app, cacheDir });
    expect(hit.cached).toBe(true);
  });

  it("Node runtimes unused since the oldest kept bundle, all of them when none is kept, and dead fetches", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const env = { ENVPACK_CACHE_DIR: cacheDir, npm_config_offline: "true" };
    const args = ["build", "--json", "src/main.ts", "--node", "20.18.0"];
    const first = await envpack(args, { cwd: app, env });
    expect(first.exitCode, first.stderr).toBe(0);
    const { digest } = JSON.parse(first.stdout) as { digest: Digest };
    const runtimes = join(cacheDir, "runtimes");
    const runtime = join(runtimes, "node-20.18.0-linux-x64");
    const binary = join(runtime, "bin", "node");
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid as number;
    await mkdir(join(runtimes, `.fetch.${dead}-0a1b2c.tmp`));
    await mkdir(join(runtimes, `.fetch.${process.pid}-0a1b2c.tmp`));
    // A runtime that lost its binary is never used again: it goes.
    await mkdir(join(runtimes, "node-20.17.0-linux-x64", "bin"), {
      recursive: true,
    });

    await cacheGc(cacheDir, BIG);
    expect((await readdir(runtimes)).sort()).toEqual([
      `.fetch.${process.pid}-0a1b2c.tmp`,
      "node-20.18.0-linux-x64",
    ]);

    const then = new Date(Date.now() - 3 * DAY_MS);
    await utimes(binary, then, then);
    const kept = await cacheGc(cacheDir, BIG);
    expect(kept.removed).toEqual([]);
    expect(await readdir(runtimes)).toEqual([
      `.fetch.${process.pid}-0a1b2c.tmp`,
    ]);

    // Gone with the bundle it built: the next build fetches it again and makes the same bytes.
    await cacheRemove(cacheDir, [digest]);
    const again = await envpack(args, { cwd: app, env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ digest, cached: false });
    expect((await stat(binary)).isFile()).toBe(true);
    const none = await cacheGc(cacheDir, 0);
    expect(none.removed).toEqual([digest]);
    expect(await readdir(runtimes)).toEqual([
      `.fetch.${process.pid}-0a1b2c.tmp`,
    ]);
  });
});
