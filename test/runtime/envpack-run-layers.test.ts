// runtime/envpack-run with layered bundles (format 3), on a PATH of worker tools only: each layer
// unpacked once per machine and shared (also with layers the packer unpacked there), the tree
// assembled by links, a Conda prefix's lower layers relocated once as a shared base, layers each safe but
// unsafe together refused as the packer refuses them, and what a killed run left redone.

import {
  chmod,
  mkdir,
  readdir,
  readFile,
  stat,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import {
  ensureUnpacked,
  writeBundleIndex,
  writeLayer,
  type BundleEntry,
} from "../../packer/index.js";
import { appCopy } from "../helpers/app-copy.js";
import {
  expectRelocatedInto,
  layerInodes,
  prefixOfTree,
  condaProbeBundle,
  writeLayeredApp,
  type CondaProbeReport,
  type LayeredApp,
} from "../helpers/layered-app.js";
import { workerPath } from "../helpers/min-path.js";
import { tempDir } from "../helpers/temp-dir.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");

/** Runs envpack-run on a bundle file with only the worker tools on PATH. */
async function runner(file: string, cache: string, command: string[] = []) {
  const path = await workerPath();
  return execa(
    join(path, "sh"),
    [RUNNER, file, ...(command.length > 0 ? ["--", ...command] : [])],
    {
      env: { PATH: path, ENVPACK_WORKER_CACHE: cache },
      extendEnv: false,
      reject: false,
      stdin: "ignore",
    },
  );
}

const roleHex = (bundle: LayeredApp, role: string) =>
  bundle.index.layers.find((l) => l.role === role)?.digest.slice(7) ?? "";

describe("envpack-run with layered bundles", () => {
  it("holding version 1 (unpacked by the packer), unpacks only version 2's app layer, shares the rest by link and runs it", async () => {
    const app = await appCopy("hello");
    const work = await tempDir("envpack-run-layers-");
    const out = join(work, "out");
    const cache = join(work, "worker");
    const v1 = await writeLayeredApp(["src/main.ts"], app, out, {
      cacheDir: join(work, "build-cache"),
    });
    // The packer and the sh runner share one layout: layers the packer unpacked are used as they are.
    await ensureUnpacked({
      file: v1.path,
      digest: v1.digest,
      envsDir: join(cache, "envs"),
    });
    const first = await runner(v1.path, cache);
    expect(first.stderr).toBe("");
    expect(first.stdout).toContain("hello, world");

    const greet = join(app, "src", "greet.ts");
    await writeFile(
      greet,
      (await readFile(greet, "utf8")).replace("hello,", "howdy,"),
    );
    const v2 = await writeLayeredApp(["src/main.ts"], app, out, {
      cacheDir: join(work, "build-cache"),
    });
    const layers = join(cache, "envs", "layers");
    const before = await layerInodes(layers);
    const second = await runner(v2.path, cache);
    expect(second.stderr).toBe("");
    expect(second.stdout).toContain("howdy, world");
    const after = await layerInodes(layers);
    for (const [name, ino] of before) expect(after.get(name)).toBe(ino);
    expect([...after.keys()].filter((n) => !before.has(n))).toEqual([
      roleHex(v2, "app"),
    ]);

    // Both trees hold the packages layer's own file, read-only.
    const file = join("app", "node_modules", "ms", "package.json");
    const inLayer = await stat(join(layers, roleHex(v2, "packages"), file));
    for (const bundle of [v1, v2]) {
      const inTree = await stat(
        join(cache, "envs", bundle.digest.slice(7), file),
      );
      expect(inTree.ino).toBe(inLayer.ino);
    }
    expect(inLayer.mode & 0o222).toBe(0);
  });

  it("relocates a Conda prefix's lower layers once, as a base shared with the packer; version 2 of the app relocates nothing", async () => {
    const work = await tempDir("envpack-run-layers-");
    const out = join(work, "out");
    const cacheDir = join(work, "build-cache");
    const v1 = await condaProbeBundle(1, out, cacheDir);
    const cache = join(work, "worker");
    const ran = await runner(v1.path, cache);
    expect(ran.exitCode, ran.stderr).toBe(0);
    const tree = join(cache, "envs", v1.digest.slice(7));
    const base = await prefixOfTree(tree);
    expect(dirname(base)).toBe(join(cache, "envs", "bases"));
    expectRelocatedInto(JSON.parse(ran.stdout) as CondaProbeReport, base);
    const packages = join(cache, "envs", "layers", roleHex(v1, "packages"));
    expect(
      await readFile(join(packages, "etc", "fixturepkg", "config.ini"), "utf8"),
    ).toContain("_placehold");
    expect(
      await readFile(join(tree, "etc", "fixturepkg", "config.ini"), "utf8"),
    ).toContain(`data_dir = ${base}/`);
    expect((await stat(join(base, "etc"))).mode & 0o222).toBe(0);

    // Version 2 by the packer, version 3 by the runner, on the same machine: both use that base.
    const relocated = join(base, ".envpack", "relocated.json");
    const before = await stat(relocated, { bigint: true });
    const v2 = await condaProbeBundle(2, out, cacheDir);
    const packed = await ensureUnpacked({
      file: v2.path,
      digest: v2.digest,
      envsDir: join(cache, "envs"),
    });
    expect(await prefixOfTree(packed.dir)).toBe(base);
    const v3 = await condaProbeBundle(3, out, cacheDir);
    const third = await runner(v3.path, cache);
    expect(third.exitCode, third.stderr).toBe(0);
    expectRelocatedInto(JSON.parse(third.stdout) as CondaProbeReport, base);
    expect(await readdir(join(cache, "envs", "bases"))).toEqual([
      basename(base),
    ]);
    const after = await stat(relocated, { bigint: true });
    expect([after.ino, after.mtimeNs]).toEqual([before.ino, before.mtimeNs]);
  });
});

/** A bundle of two layers (packages, app) written in `out`. */
async function twoLayers(
  out: string,
  first: BundleEntry[],
  second: BundleEntry[],
) {
  const a = await writeLayer("packages", first, { outDir: out });
  const b = await writeLayer("app", second, { outDir: out });
  return writeBundleIndex(
    {
      format: 3,
      kind: "node",
      layers: [
        { role: "packages", digest: a.digest, size: a.size },
        { role: "app", digest: b.digest, size: b.size },
      ],
    },
    out,
  );
}

const file = (path: string, text: string): BundleEntry => ({
  path,
  type: "file",
  data: Buffer.from(text),
});

describe("envpack-run refuses layers unsafe together, as the packer does", () => {
  it.each([
    [
      "a path in two layers",
      [file("app/x.js", "1")],
      [file("app/x.js", "2")],
      "app/x.js",
    ],
    [
      "an entry under another layer's symlink",
      [{ path: "app/lib", type: "symlink", linkTarget: "." }],
      [file("app/lib/x.js", "1")],
      "app/lib",
    ],
    [
      "a link that climbs out through another layer's link",
      [{ path: "a", type: "symlink", linkTarget: "." }],
      [{ path: "b/up", type: "symlink", linkTarget: "../a/../x" }],
      "b/up",
    ],
  ] as Array<[string, BundleEntry[], BundleEntry[], string]>)(
    "%s",
    async (_name, first, second, entry) => {
      const work = await tempDir("envpack-run-layers-bad-");
      const index = await twoLayers(join(work, "out"), first, second);
      const cache = join(work, "worker");
      const ran = await runner(index.path, cache, ["sh", "-c", ":"]);
      expect(ran.exitCode).toBe(4);
      expect(ran.stderr).toMatch(
        `ENVPACK_INTEGRITY_UNSAFE_ENTRY: ${index.path}: unsafe entry "${entry}": `,
      );
      const packer = await ensureUnpacked({
        file: index.path,
        digest: index.digest,
        envsDir: join(work, "packer-envs"),
      }).catch((error: unknown) => error);
      expect(packer).toMatchObject({
        code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
        details: { entry },
      });
      // Nothing assembled, nothing half-made beside it.
      expect(
        (await readdir(join(cache, "envs"))).filter((n) => n !== "layers"),
      ).toEqual([]);
    },
  );

  it("assembles layers whose names tar lists with escapes (non-ASCII) by copying links", async () => {
    const work = await tempDir("envpack-run-layers-names-");
    const index = await twoLayers(
      join(work, "out"),
      [file("lib/café.txt", "A")],
      [file("app/b.txt", "B")],
    );
    const cache = join(work, "worker");
    const ran = await runner(index.path, cache, ["sh", "-c", ":"]);
    expect(ran.stderr).toBe("");
    const tree = join(cache, "envs", index.digest.slice(7));
    expect(await readFile(join(tree, "lib", "café.txt"), "utf8")).toBe("A");
    expect(await readFile(join(tree, "app", "b.txt"), "utf8")).toBe("B");
  });

  it("redoes what a killed run left: a layer's temp, its lock, a tree without its marker", async () => {
    const work = await tempDir("envpack-run-layers-crash-");
    const out = join(work, "out");
    const index = await twoLayers(
      out,
      [file("lib/a.txt", "A")],
      [file("app/b.txt", "B")],
    );
    const layer = (await readdir(out)).find((n) => n.endsWith(".tar.zst"));
    const hex = layer?.slice(0, 64) ?? "";
    const cache = join(work, "worker");
    const layers = join(cache, "envs", "layers");
    // A run killed after its temp lost its write bits, holding the layer's lock.
    const temp = join(layers, `.${hex}.999999.tmp`);
    await mkdir(join(temp, "lib"), { recursive: true });
    await writeFile(join(temp, "lib", "half"), "");
    await chmod(join(temp, "lib", "half"), 0o444);
    await chmod(join(temp, "lib"), 0o555);
    await mkdir(join(layers, `${hex}.lock`));
    await writeFile(join(layers, `${hex}.lock`, "pid"), "999999 1\n");
    // And a tree moved into place whose marker was never written.
    const tree = join(cache, "envs", index.digest.slice(7));
    await mkdir(join(tree, "app"), { recursive: true });
    await writeFile(join(tree, "app", "stale"), "");

    const ran = await runner(index.path, cache, ["sh", "-c", ":"]);
    expect(ran.stderr).toBe("");
    expect(await readdir(layers)).not.toContain(`.${hex}.999999.tmp`);
    expect(await readdir(layers)).not.toContain(`${hex}.lock`);
    expect((await readdir(join(tree, "app"))).sort()).toEqual(["b.txt"]);
    expect(await readdir(join(tree, "lib"))).toEqual(["a.txt"]);
  });
});
