// Layered bundles (format 3) in the packer: layers split and written, shared by bundles that
// have them in common, unpacked once per machine and assembled into one tree by links, with
// Node resolution and Conda relocation exactly as in a single-blob bundle.

import {
  mkdir,
  readdir,
  lstat,
  readFile,
  realpath,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import {
  ensureUnpacked,
  writeBundleIndex,
  writeLayer,
  writeLayeredBundle,
  type BundleEntry,
  type BundleIndex,
  type LayerRole,
} from "../../packer/index.js";
import { scan } from "../../src/api/index.js";
import { planBundle } from "../../src/api/plan-bundle.js";
import type { Digest } from "../../src/core/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { workerPath } from "../helpers/min-path.js";
import { tempDir } from "../helpers/temp-dir.js";

const byRole = (index: BundleIndex) =>
  Object.fromEntries(index.layers.map((l) => [l.role, l.digest])) as Record<
    LayerRole,
    Digest
  >;

/** Scans, plans and writes a layered bundle of an app into `out`. */
async function layered(
  entries: string[],
  cwd: string,
  out: string,
  cacheDir: string,
  env?: string,
) {
  const manifest = await scan({ entries, cwd, env });
  const plan = await planBundle(manifest, { cacheDir });
  try {
    return await writeLayeredBundle(
      manifest.kind,
      [...plan.leading, ...plan.entries],
      { outDir: out },
    );
  } finally {
    await plan.dispose();
  }
}

describe("layered Node bundles", () => {
  it("share the runtime and packages layers across an app edit; a runner holding v1 unpacks only v2's app layer; the app resolves every package from the packages layer", async () => {
    const app = await appCopy("hello");
    const work = await tempDir("envpack-layered-");
    const out = join(work, "out");
    const cache = join(work, "cache");
    const envs = join(work, "envs");
    const v1 = await layered(["src/main.ts"], app, out, cache);
    expect(v1.index.layers.map((l) => l.role)).toEqual([
      "runtime",
      "packages",
      "app",
    ]);
    const first = await ensureUnpacked({
      file: v1.path,
      digest: v1.digest,
      envsDir: envs,
    });
    const path = await workerPath();
    const ran = await execa(join(first.dir, "bin", "envpack-app"), [], {
      env: { PATH: path },
      extendEnv: false,
    });
    expect(ran.stdout).toContain("hello, world");

    // Every package file the app can load is the packages layer's own file, linked.
    const packages = join(envs, "layers", byRole(v1.index).packages.slice(7));
    const resolved = await execa(
      join(first.dir, "bin", "node"),
      [
        "-e",
        "for (const m of ['ms', 'picocolors']) console.log(require.resolve(m))",
      ],
      { cwd: join(first.dir, "app"), env: { PATH: path }, extendEnv: false },
    );
    const files = resolved.stdout.trim().split("\n");
    expect(files).toHaveLength(2);
    for (const file of files) {
      // Each package directory is one link to the packages layer's: node resolves the package
      // to the layer's own file, which the tree's path reaches.
      expect(file.startsWith(join(packages, "app", "node_modules"))).toBe(true);
      const inTree = join(first.dir, file.slice(packages.length + 1));
      expect(await realpath(inTree)).toBe(file);
      // Shared read-only: an edit in place cannot reach another bundle.
      expect((await stat(file)).mode & 0o222).toBe(0);
    }
    // node_modules itself is the tree's own directory (tools write caches there).
    expect(
      (await lstat(join(first.dir, "app", "node_modules"))).isDirectory(),
    ).toBe(true);

    // Edit one app file: only the app layer (and the index) change.
    const greet = join(app, "src", "greet.ts");
    await writeFile(
      greet,
      (await readFile(greet, "utf8")).replace("hello,", "howdy,"),
    );
    const v2 = await layered(["src/main.ts"], app, out, cache);
    expect(v2.digest).not.toBe(v1.digest);
    expect(byRole(v2.index).runtime).toBe(byRole(v1.index).runtime);
    expect(byRole(v2.index).packages).toBe(byRole(v1.index).packages);
    expect(byRole(v2.index).app).not.toBe(byRole(v1.index).app);

    const before = await layerInodes(join(envs, "layers"));
    const second = await ensureUnpacked({
      file: v2.path,
      digest: v2.digest,
      envsDir: envs,
    });
    const after = await layerInodes(join(envs, "layers"));
    // The three layers of v1 are untouched; one new directory, v2's app layer.
    for (const [name, ino] of before) expect(after.get(name)).toBe(ino);
    expect([...after.keys()].filter((n) => !before.has(n))).toEqual([
      byRole(v2.index).app.slice(7),
    ]);
    const ran2 = await execa(join(second.dir, "bin", "envpack-app"), [], {
      env: { PATH: path },
      extendEnv: false,
    });
    expect(ran2.stdout).toContain("howdy, world");
  });

  it("two apps with the same dependencies share their packages layer blob", async () => {
    const one = await appCopy("hello");
    const two = await appCopy("hello");
    await writeFile(
      join(two, "src", "main.ts"),
      'import ms from "ms";\nimport pc from "picocolors";\nconsole.log(pc.bold(String(ms("1m"))));\n',
    );
    const work = await tempDir("envpack-layered-");
    const a = await layered(
      ["src/main.ts"],
      one,
      join(work, "a"),
      join(work, "cache"),
    );
    const b = await layered(
      ["src/main.ts"],
      two,
      join(work, "b"),
      join(work, "cache"),
    );
    expect(byRole(b.index).packages).toBe(byRole(a.index).packages);
    expect(byRole(b.index).runtime).toBe(byRole(a.index).runtime);
    expect(byRole(b.index).app).not.toBe(byRole(a.index).app);
  });
});

/** Inode of each unpacked layer directory, by name (locks and temps left out). */
async function layerInodes(dir: string): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const name of await readdir(dir))
    if (/^[0-9a-f]{64}$/.test(name))
      out.set(name, (await stat(join(dir, name), { bigint: true })).ino);
  return out;
}

describe("layered Conda bundles", () => {
  it("relocate the prefix as a whole once assembled from layers unpacked apart; the shared layers keep their placeholders", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const app = await tempDir("envpack-layered-py-");
    await writeFile(
      join(app, "main.py"),
      "import json, fixturepkg, six, jsonpointer\nprint(json.dumps(fixturepkg.check()))\n",
    );
    const work = await tempDir("envpack-layered-");
    const bundle = await layered(
      ["main.py"],
      app,
      join(work, "out"),
      join(work, "cache"),
      conda.prefix,
    );
    expect(bundle.index.layers.map((l) => l.role)).toEqual([
      "runtime",
      "packages",
      "app",
    ]);
    const envs = join(work, "envs");
    const { dir } = await ensureUnpacked({
      file: bundle.path,
      digest: bundle.digest,
      envsDir: envs,
    });
    const ran = await execa(join(dir, "bin", "envpack-app"), [], {
      env: { PATH: await workerPath() },
      extendEnv: false,
    });
    const check = JSON.parse(ran.stdout) as Record<string, unknown>;
    // Every path the package reports is inside the assembled prefix, not a layer's directory.
    const paths = Object.values(check).filter(
      (v): v is string => typeof v === "string" && v.startsWith("/"),
    );
    expect(paths.length).toBeGreaterThan(0);
    expect(paths.filter((p) => p !== dir && !p.startsWith(`${dir}/`))).toEqual(
      [],
    );
    expect(Object.values(check).filter((v) => v === false)).toEqual([]);
    // The relocated files are the tree's own; the layers still hold the placeholder.
    const packages = join(
      envs,
      "layers",
      byRole(bundle.index).packages.slice(7),
    );
    expect(
      await readFile(join(packages, "etc", "fixturepkg", "config.ini"), "utf8"),
    ).toContain("_placehold");
    expect(
      await readFile(join(dir, "etc", "fixturepkg", "config.ini"), "utf8"),
    ).toContain(dir);
  });
});

describe("assembling layers refuses what each layer alone allows", () => {
  async function twoLayers(
    first: BundleEntry[],
    second: BundleEntry[],
  ): Promise<unknown> {
    const work = await tempDir("envpack-layered-bad-");
    const out = join(work, "out");
    const a = await writeLayer("packages", first, { outDir: out });
    const b = await writeLayer("app", second, { outDir: out });
    const index = await writeBundleIndex(
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
    const envs = join(work, "envs");
    const error = await ensureUnpacked({
      file: index.path,
      digest: index.digest,
      envsDir: envs,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Nothing assembled, nothing half-made beside it.
    expect((await readdir(envs)).filter((n) => n !== "layers")).toEqual([]);
    return error;
  }

  it("a path in two layers", async () => {
    const error = await twoLayers(
      [{ path: "app/x.js", type: "file", data: Buffer.from("1") }],
      [{ path: "app/x.js", type: "file", data: Buffer.from("2") }],
    );
    expect(error).toMatchObject({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      details: { entry: "app/x.js" },
    });
  });

  it("an entry under another layer's symlink", async () => {
    const error = await twoLayers(
      [{ path: "app/lib", type: "symlink", linkTarget: "." }],
      [{ path: "app/lib/x.js", type: "file", data: Buffer.from("1") }],
    );
    expect(error).toMatchObject({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      details: { entry: "app/lib" },
    });
  });

  it("a link that climbs out through another layer's link", async () => {
    // Alone each stays inside; together b/up → a/.. → ../x, outside the tree. (b is in both
    // layers, so it is made and its links checked with every layer's.)
    const error = await twoLayers(
      [
        { path: "a", type: "symlink", linkTarget: "." },
        { path: "b/keep", type: "file", data: Buffer.from("1") },
      ],
      [{ path: "b/up", type: "symlink", linkTarget: "../a/../x" }],
    );
    expect(error).toMatchObject({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      details: { entry: "b/up" },
    });
  });

  it("a link that enters a directory linked whole from one layer and climbs back out", async () => {
    // app/lib is the packages layer's alone: one link to it, where `..` is that layer's app/.
    const error = await twoLayers(
      [{ path: "app/lib/x.js", type: "file", data: Buffer.from("2") }],
      [
        { path: "app/main.js", type: "file", data: Buffer.from("1") },
        { path: "app/p", type: "symlink", linkTarget: "lib/../main.js" },
      ],
    );
    expect(error).toMatchObject({
      code: "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      details: { entry: "app/p" },
    });
  });
});
