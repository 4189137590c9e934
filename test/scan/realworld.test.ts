// Scans the realworld fixture app (real packages installed from its lockfile) and proves the manifest by building and running it.

import {
  copyFile,
  cp,
  link,
  mkdir,
  readFile,
  readdir,
  readlink,
  symlink,
  writeFile,
} from "node:fs/promises";
import { join, posix } from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { scan } from "../../src/scan/index.js";
import type { Manifest } from "../../src/core/index.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

/** The parts of a package-lock.json (v3) entry this test reads. */
interface LockEntry {
  version?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
}

interface Lockfile {
  packages: Record<string, LockEntry>;
}

const ENTRY = "src/main.ts";

function appDir(): string {
  const dir = inject("fixtures").apps["realworld"];
  if (dir === undefined)
    throw new Error("the realworld fixture app was not installed");
  return dir;
}

/** Where Node finds `name` from the package installed at `from` (a lockfile key), or undefined. */
function locate(
  lock: Lockfile,
  from: string,
  name: string,
): string | undefined {
  let base = from;
  for (;;) {
    const candidate = posix.join(base, "node_modules", name);
    if (lock.packages[candidate] !== undefined) return candidate;
    if (base === "") return undefined;
    const at = base.lastIndexOf("/node_modules/");
    base = at === -1 ? "" : base.slice(0, at);
  }
}

/** The lockfile's run-time closure of one package: every installed package it reaches. */
function lockClosure(lock: Lockfile, root: string): Set<string> {
  const seen = new Set<string>();
  const queue = [root];
  for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
    const entry = lock.packages[id] ?? {};
    const names = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
    ];
    for (const name of names) {
      const found = locate(lock, id, name);
      if (found === undefined || seen.has(found)) continue;
      seen.add(found);
      queue.push(found);
    }
  }
  return seen;
}

/**
 * Recreates the tree at `from` under `to` with hard links (copies across file systems), so a
 * moved copy of the app costs no file data. Package files are never edited through the links.
 */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) await linkTree(source, target);
    else if (entry.isSymbolicLink())
      await symlink(await readlink(source), target);
    else
      await link(source, target).catch(async (error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
        await copyFile(source, target);
      });
  }
}

/** The manifest's closure of one package, following `dependencies` ids. */
function manifestClosure(manifest: Manifest, root: string): Set<string> {
  const byId = new Map(manifest.packages.map((p) => [p.id, p]));
  const seen = new Set<string>();
  const queue = [root];
  for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
    for (const dep of byId.get(id)?.dependencies ?? []) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      queue.push(dep);
    }
  }
  return seen;
}

describe("scan of the realworld fixture app", () => {
  let manifest: Manifest;
  let lock: Lockfile;
  let filesParsed = 0;

  beforeAll(async () => {
    const dir = appDir();
    lock = JSON.parse(
      await readFile(join(dir, "package-lock.json"), "utf8"),
    ) as Lockfile;
    manifest = await scan({
      entries: [ENTRY],
      cwd: dir,
      generatorVersion: "0.0.0-test",
      onEvent: (event) => {
        if (event.type === "scan:done") filesParsed = event.files;
      },
    });
  });

  const pkg = (id: string) => manifest.packages.find((p) => p.id === id);
  const appImport = (file: string, specifier: string) =>
    manifest.imports.find((i) => i.file === file && i.specifier === specifier);

  it("reaches a few hundred files and finds every imported package at its locked version", () => {
    expect(filesParsed).toBeGreaterThanOrEqual(300);
    const imported = [
      "express",
      "chalk",
      "nanoid",
      "zod",
      "uuid",
      "date-fns",
      "yaml",
      "semver",
      "esbuild",
    ];
    for (const name of imported) {
      const id = `node_modules/${name}`;
      const locked = lock.packages[id];
      expect(locked, `${id} in the lockfile`).toBeDefined();
      expect(pkg(id), id).toMatchObject({
        name,
        version: locked?.version,
        manager: "npm",
        reason: "import",
      });
    }
  });

  it("takes every package's version and integrity from the lockfile", () => {
    const npm = manifest.packages.filter((p) => p.manager === "npm");
    expect(npm.length).toBeGreaterThanOrEqual(60);
    for (const p of npm) {
      const locked = lock.packages[p.path];
      expect(locked, `${p.path} in the lockfile`).toBeDefined();
      expect({ id: p.id, version: p.version, integrity: p.integrity }).toEqual({
        id: p.id,
        version: locked?.version,
        integrity: locked?.integrity,
      });
      expect(p.integritySource, p.id).toBe("lockfile");
    }
  });

  it("keeps the host's per-platform esbuild binary and no other platform's", () => {
    const host = `node_modules/@esbuild/${process.platform}-${process.arch}`;
    const variants = Object.keys(lock.packages).filter((k) =>
      k.startsWith("node_modules/@esbuild/"),
    );
    expect(variants).toContain(host);
    expect(variants.length).toBeGreaterThan(10);
    expect(pkg(host)).toMatchObject({
      optional: true,
      os: [process.platform],
      cpu: [process.arch],
    });
    expect(pkg("node_modules/esbuild")?.dependencies).toContain(host);
    const present = manifest.packages
      .map((p) => p.id)
      .filter((id) => id.startsWith("node_modules/@esbuild/"));
    expect(present).toEqual([host]);
  });

  it("records the file each export condition chose", () => {
    const targets = {
      chalk: ["src/text.ts", "node_modules/chalk/source/index.js"],
      nanoid: ["src/ids.ts", "node_modules/nanoid/index.js"],
      uuid: ["src/ids.ts", "node_modules/uuid/dist/esm/index.js"],
      zod: ["src/schema.ts", "node_modules/zod/dist/esm/index.js"],
      "date-fns": ["src/text.ts", "node_modules/date-fns/index.js"],
      yaml: ["src/text.ts", "node_modules/yaml/dist/index.js"],
      semver: ["src/tooling.ts", "node_modules/semver/index.js"],
      express: ["src/server.ts", "node_modules/express/index.js"],
    } as const;
    for (const [specifier, [file, target]] of Object.entries(targets)) {
      expect(appImport(file, specifier), specifier).toMatchObject({
        resolved: `package:node_modules/${specifier}`,
        target,
      });
    }
  });

  it("sees dynamic imports, createRequire, JSON imports and builtins, and ignores type-only imports", () => {
    expect(appImport("src/text.ts", "yaml")?.kind).toBe("dynamic-import");
    expect(appImport("src/tooling.ts", "semver")?.kind).toBe("require");
    expect(appImport("src/main.ts", "./routes.json")).toMatchObject({
      resolved: "file:src/routes.json",
    });
    expect(manifest.files).toContainEqual(
      expect.objectContaining({ path: "src/routes.json", role: "json" }),
    );
    for (const builtin of ["node:crypto", "node:path", "node:process"]) {
      expect(appImport("src/main.ts", builtin)?.resolved, builtin).toBe(
        "builtin",
      );
    }
    expect(appImport("src/tooling.ts", "node:module")?.resolved).toBe(
      "builtin",
    );
    expect(
      manifest.imports.filter((i) => i.specifier === "./types.js"),
    ).toEqual([]);
    expect(manifest.files.map((f) => f.path)).not.toContain("src/types.ts");
    expect(manifest.files.map((f) => f.path)).toEqual(
      expect.arrayContaining([
        "src/main.ts",
        "src/ids.ts",
        "src/schema.ts",
        "src/server.ts",
        "src/text.ts",
        "src/tooling.ts",
      ]),
    );
  });

  it("leaves nothing of the app's own unresolved", () => {
    expect(manifest.unresolved.filter((u) => u.package === undefined)).toEqual(
      [],
    );
  });

  it("gives express (CommonJS) its whole installed dependency closure", () => {
    const fromLock = lockClosure(lock, "node_modules/express");
    expect(fromLock.size).toBeGreaterThan(40);
    expect(
      [...manifestClosure(manifest, "node_modules/express")].sort(),
    ).toEqual([...fromLock].sort());
    expect(fromLock).toContain("node_modules/body-parser");
    expect(fromLock).toContain("node_modules/send/node_modules/ms");
  });
});

describe("input digest of the realworld fixture app", () => {
  const digestOf = async (dir: string) =>
    (
      await scan({
        entries: [ENTRY],
        cwd: dir,
        generatorVersion: "0.0.0-test",
      })
    ).inputDigest;

  it("is the same from a quick scan that reads no package file (the registry lookup's)", async () => {
    let parsed = 0;
    const quick = await scan({
      entries: [ENTRY],
      cwd: appDir(),
      generatorVersion: "0.0.0-test",
      parsePackages: false,
      onEvent: (event) => {
        if (event.type === "scan:done") parsed = event.files;
      },
    });
    expect(quick.inputDigest).toBe(await digestOf(appDir()));
    expect(quick.packages.map((p) => p.id)).toEqual(
      (
        await scan({
          entries: [ENTRY],
          cwd: appDir(),
          generatorVersion: "0.0.0-test",
        })
      ).packages.map((p) => p.id),
    );
    // Only the app's own files were parsed.
    expect(parsed).toBeLessThan(20);
  });

  it("is stable across scans and moves, and changes when an app file is edited", async () => {
    const dir = appDir();
    const first = await digestOf(dir);
    expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await digestOf(dir)).toBe(first);

    const moved = join(await tempDir("envpack-realworld-"), "moved", "app");
    for (const name of ["src", "package.json", "package-lock.json"])
      await cp(join(dir, name), join(moved, name), { recursive: true });
    await linkTree(join(dir, "node_modules"), join(moved, "node_modules"));
    expect(await digestOf(moved)).toBe(first);

    const ids = join(moved, "src", "ids.ts");
    await writeFile(ids, `${await readFile(ids, "utf8")}// edited\n`);
    expect(await digestOf(moved)).not.toBe(first);
  });
});

describe("build + run of the realworld fixture app", () => {
  it("runs the bundled app and prints the expected report", async () => {
    const dir = appDir();
    const env = { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") };
    const built = await envpack(["build", "--json", ENTRY], { cwd: dir, env });
    expect(built.exitCode, built.stderr).toBe(0);
    const { digest } = JSON.parse(built.stdout) as { digest: string };
    const ran = await envpack(["run", digest], { cwd: dir, env });
    expect(ran.exitCode, ran.stderr).toBe(0);
    expect(ran.stdout.trim().split("\n")).toEqual([
      "realworld report",
      "service: inventory",
      'routes: "5"',
      "id: e9d9e7a2-c255-5153-a1a9-80dc67a5cd2b",
      "short: xxxxxx 21",
      "release: 2024-01-15 Monday",
      "next: 1.3.0 in ^1.2.0",
      "esbuild: 0.25.5 let n = 1;",
      "digest: b11a85b296a9",
      "module: main.js",
    ]);
  });
});
