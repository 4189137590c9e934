// Layered bundles (format 3) in the packer: layers split and written, shared by bundles that
// have them in common, unpacked once per machine and assembled into one tree by links, with
// Node resolution as in a single-blob bundle, and a Conda prefix's lower layers relocated once as a
// base that trees differing only in their app layer share.

import {
  chmod,
  mkdir,
  readdir,
  lstat,
  readFile,
  realpath,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import {
  baseName,
  ensureUnpacked,
  writeBundleIndex,
  writeLayer,
  type BundleEntry,
  type BundleIndex,
  type LayerRole,
} from "../../packer/index.js";
import type { Digest } from "../../src/core/index.js";
import { appCopy } from "../helpers/app-copy.js";
import {
  expectRelocatedInto,
  layerInodes,
  prefixOfTree,
  condaProbeBundle,
  writeLayeredApp,
  type CondaProbeReport,
} from "../helpers/layered-app.js";
import { workerPath } from "../helpers/min-path.js";
import { tempDir } from "../helpers/temp-dir.js";

const byRole = (index: BundleIndex) =>
  Object.fromEntries(index.layers.map((l) => [l.role, l.digest])) as Record<
    LayerRole,
    Digest
  >;

describe("layered Node bundles", () => {
  it("share the runtime and packages layers across an app edit; a runner holding v1 unpacks only v2's app layer; the app resolves every package from the packages layer", async () => {
    const app = await appCopy("hello");
    const work = await tempDir("envpack-layered-");
    const out = join(work, "out");
    const cache = join(work, "cache");
    const envs = join(work, "envs");
    const v1 = await writeLayeredApp(["src/main.ts"], app, out, {
      cacheDir: cache,
    });
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
    // Every layer is read-only throughout, as unpacked (the runtime's by the worker thread, the
    // app's inline): its root, directories and files, symlinks aside.
    for (const layer of v1.index.layers) {
      const root = join(envs, "layers", layer.digest.slice(7));
      const writable: string[] = [];
      if (((await lstat(root)).mode & 0o222) !== 0) writable.push(root);
      for (const entry of await readdir(root, {
        withFileTypes: true,
        recursive: true,
      })) {
        if (entry.isSymbolicLink()) continue;
        const path = join(entry.parentPath, entry.name);
        if (((await lstat(path)).mode & 0o222) !== 0) writable.push(path);
      }
      expect(writable).toEqual([]);
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
    const v2 = await writeLayeredApp(["src/main.ts"], app, out, {
      cacheDir: cache,
    });
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
    const cacheDir = join(work, "cache");
    const a = await writeLayeredApp(["src/main.ts"], one, join(work, "a"), {
      cacheDir,
    });
    const b = await writeLayeredApp(["src/main.ts"], two, join(work, "b"), {
      cacheDir,
    });
    expect(byRole(b.index).packages).toBe(byRole(a.index).packages);
    expect(byRole(b.index).runtime).toBe(byRole(a.index).runtime);
    expect(byRole(b.index).app).not.toBe(byRole(a.index).app);
  });
});

describe("layered Conda bundles", () => {
  it("relocate the lower layers once, as a base shared by bundles that differ in their app layer; the layers keep their placeholders", async () => {
    const work = await tempDir("envpack-layered-");
    const out = join(work, "out");
    const cacheDir = join(work, "cache");
    const v1 = await condaProbeBundle(1, out, cacheDir);
    expect(v1.index.layers.map((l) => l.role)).toEqual([
      "runtime",
      "packages",
      "app",
    ]);
    const envs = join(work, "envs");
    const first = await ensureUnpacked({
      file: v1.path,
      digest: v1.digest,
      envsDir: envs,
    });
    const path = await workerPath();
    const run = async (dir: string) =>
      JSON.parse(
        (
          await execa(join(dir, "bin", "envpack-app"), [], {
            env: { PATH: path },
            extendEnv: false,
          })
        ).stdout,
      ) as CondaProbeReport;
    // Python runs from the relocated base (its layers unpacked apart), which the tree links to.
    const base = await prefixOfTree(first.dir);
    expect(dirname(base)).toBe(join(envs, "bases"));
    expectRelocatedInto(await run(first.dir), base);
    const packages = join(envs, "layers", byRole(v1.index).packages.slice(7));
    expect(
      await readFile(join(packages, "etc", "fixturepkg", "config.ini"), "utf8"),
    ).toContain("_placehold");
    expect(
      await readFile(
        join(first.dir, "etc", "fixturepkg", "config.ini"),
        "utf8",
      ),
    ).toContain(`data_dir = ${base}/`);
    // The base is shared and read-only, its directories included.
    expect((await stat(base)).mode & 0o222).toBe(0);
    expect((await stat(join(base, "etc", "fixturepkg"))).mode & 0o222).toBe(0);

    // Version 2 differs in its app layer alone: its tree links to the same base, not relocated again.
    const v2 = await condaProbeBundle(2, out, cacheDir);
    expect(byRole(v2.index).packages).toBe(byRole(v1.index).packages);
    const relocated = join(base, ".envpack", "relocated.json");
    const before = await stat(relocated, { bigint: true });
    const second = await ensureUnpacked({
      file: v2.path,
      digest: v2.digest,
      envsDir: envs,
    });
    expect(second.dir).not.toBe(first.dir);
    expect(await prefixOfTree(second.dir)).toBe(base);
    expect(await readdir(join(envs, "bases"))).toEqual([basename(base)]);
    const after = await stat(relocated, { bigint: true });
    expect([after.ino, after.mtimeNs]).toEqual([before.ino, before.mtimeNs]);
    expectRelocatedInto(await run(second.dir), base);
  });
});

describe("a relocated base left half-made", () => {
  it("is made again, never used: a base without its marker, a temp and a dead holder's lock", async () => {
    const work = await tempDir("envpack-layered-crash-");
    const bundle = await condaProbeBundle(
      1,
      join(work, "out"),
      join(work, "cache"),
    );
    const envs = join(work, "envs");
    const lower = bundle.index.layers.filter((l) => l.role !== "app");
    const hex = baseName(lower);
    const bases = join(envs, "bases");
    // Killed after the rename, before relocation finished: its files still hold the placeholder.
    const stale = join(bases, hex);
    await mkdir(join(stale, "bin"), { recursive: true });
    await writeFile(join(stale, "bin", "half"), "");
    await chmod(stale, 0o555);
    await mkdir(join(bases, `.${hex}.999999.tmp`, "lib"), { recursive: true });
    await mkdir(join(bases, `${hex}.lock`));
    await writeFile(join(bases, `${hex}.lock`, "pid"), "999999 1\n");

    const { dir } = await ensureUnpacked({
      file: bundle.path,
      digest: bundle.digest,
      envsDir: envs,
    });
    expect((await readdir(bases)).sort()).toEqual([hex]);
    expect(await readdir(join(stale, "bin"))).not.toContain("half");
    expect(await prefixOfTree(dir)).toBe(stale);
    const ran = await execa(join(dir, "bin", "envpack-app"), [], {
      env: { PATH: await workerPath() },
      extendEnv: false,
    });
    expectRelocatedInto(JSON.parse(ran.stdout) as CondaProbeReport, stale);
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
