// A cold Conda build packs the prefix while it scans: the runtime key it checks first is the one
// the scan's manifest gives, and the bytes and warnings are those of a build planning after it.

import { cp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { build, scan } from "../../src/api/index.js";
import { builderIdentity } from "../../src/api/bundle-cache.js";
import { CondaPrepack, prefixRuntimeKey } from "../../src/api/conda-prepack.js";
import { layerKeys } from "../../src/api/layer-keys.js";
import { readCondaEnv } from "../../src/conda/index.js";
import type { EnvpackEvent } from "../../src/core/index.js";
import { openBundleWriter, startPackThread } from "../../packer/index.js";
import { LocalStore } from "../../src/registry/index.js";
import { copyWithPythonFileShared } from "../helpers/conda-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

function fixture() {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda;
}

async function pythonApp(): Promise<string> {
  const app = await tempDir("envpack-prepack-app-");
  await writeFile(
    join(app, "app.py"),
    "import six\n\nprint(six.__version__)\n",
  );
  return app;
}

describe("a Conda build's prepacked prefix", () => {
  it("is checked under the runtime key the scanned manifest gives", async () => {
    const { prefix } = fixture();
    const manifest = await scan({
      entries: ["app.py"],
      cwd: await pythonApp(),
      env: prefix,
    });
    const env = await readCondaEnv(prefix);
    const builder = builderIdentity();
    for (const options of [{}, { level: 9 }]) {
      const known = prefixRuntimeKey(env, builder, options);
      expect(known).toBe(layerKeys(manifest, builder, options).runtime);
    }
  });

  it("gives the bytes and warnings of a build from the manifest file, which plans after reading it", async () => {
    const root = join(await tempDir("envpack-prepack-env-"), "root");
    await cp(fixture().root, root, { recursive: true, verbatimSymlinks: true });
    const prefix = join(root, "envs", "demo");
    // An unmanaged binary file holding the prefix: the plan warns about it.
    await writeFile(
      join(prefix, "share", "unrelocatable.bin"),
      Buffer.concat([Buffer.from([0xff, 0xfe, 0]), Buffer.from(prefix)]),
    );
    const app = await pythonApp();
    const warnings = (events: EnvpackEvent[]) =>
      events.flatMap((e) => (e.type === "warn" ? [e.code] : []));

    const scanned: EnvpackEvent[] = [];
    const prepacked = await build({
      entries: ["app.py"],
      cwd: app,
      env: prefix,
      cacheDir: join(await tempDir(), "cache"),
      onEvent: (e) => scanned.push(e),
    });
    const manifestFile = join(app, "manifest.json");
    await writeFile(
      manifestFile,
      JSON.stringify(
        await scan({ entries: ["app.py"], cwd: app, env: prefix }),
      ),
    );
    const planned: EnvpackEvent[] = [];
    const fromFile = await build({
      manifest: manifestFile,
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
      onEvent: (e) => planned.push(e),
    });

    expect(prepacked.source).toBe("built");
    expect(prepacked.digest).toBe(fromFile.digest);
    expect(prepacked.layers).toEqual(fromFile.layers);
    expect(warnings(scanned)).toEqual(["ENVPACK_WARN_CONDA_UNRELOCATABLE"]);
    expect(warnings(planned)).toEqual(warnings(scanned));
  });

  it("packs the runtime layer afresh when the plan's draft of it does not hold", async () => {
    // six lists a file of python's: the runtime layer is final only with the plan.
    const prefix = await copyWithPythonFileShared("prepack-shared");
    const app = await pythonApp();
    const prepacked = await build({
      entries: ["app.py"],
      cwd: app,
      env: prefix,
      cacheDir: join(await tempDir(), "cache"),
    });
    const manifestFile = join(app, "manifest.json");
    await writeFile(
      manifestFile,
      JSON.stringify(
        await scan({ entries: ["app.py"], cwd: app, env: prefix }),
      ),
    );
    const fromFile = await build({
      manifest: manifestFile,
      cwd: app,
      cacheDir: join(await tempDir(), "cache"),
    });
    expect(prepacked.source).toBe("built");
    expect(prepacked.digest).toBe(fromFile.digest);
    expect(prepacked.layers).toEqual(fromFile.layers);
  });

  it("ends the runtime layer's frame before the packages layer packs, on one pack thread", async () => {
    const { prefix } = fixture();
    const work = await tempDir("envpack-prepack-order-");
    const thread = startPackThread();
    const calls: string[] = [];
    const prepack = new CondaPrepack({
      store: new LocalStore(join(work, "cache")),
      prefix,
      builder: builderIdentity(),
      keyOptions: {},
      readEnv: readCondaEnv,
      openWriter: (role) => {
        const writer = openBundleWriter({ outDir: join(work, "tmp"), thread });
        return {
          add: (entries) => {
            calls.push(`${role} add`);
            writer.add(entries);
          },
          finish: () => {
            calls.push(`${role} finish`);
            return writer.finish();
          },
          abort: () => writer.abort(),
        };
      },
    });
    try {
      const writers = await prepack.writers();
      const runtime = await writers.get("runtime")?.finish();
      const packages = await writers.get("packages")?.finish();
      // The worker packs jobs in the order posted: the runtime frame ends (and its zstd context is
      // free again) before the first packages batch, whenever the build gets to the layers.
      expect(calls).toEqual([
        "runtime add",
        "runtime finish",
        "packages add",
        "packages finish",
      ]);
      expect(runtime?.digest).toMatch(/^sha256:/);
      expect(packages?.digest).not.toBe(runtime?.digest);
    } finally {
      await prepack.dispose();
      await thread.close(true);
    }
  });
});
