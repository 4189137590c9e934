// Conda bundles: planned from the fixture prefix, unpacked at a longer path, relocated by the bundle's own python, and run without any system python.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import {
  cp,
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import {
  packCondaWithCondaPack,
  planCondaBundle,
  type CondaBundleEntry,
} from "../../packer/conda/index.js";
import { rewriteCondaMeta } from "../../packer/conda/conda-meta-json.js";
import {
  CHANGED,
  OMIT,
  settlePyc,
  useNativeAddon,
} from "../../packer/conda/hash-based-pyc.mjs";
import { unpackBundle, writeBundle } from "../../packer/index.js";
import { nativeStatFile, type WarnEvent } from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const PLACEHOLDER_START =
  "/home/conda/feedstock_root/build_artifacts/fixture_1700000000/_h_env";

function fixture() {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda;
}

/** Packs planned entries with writeBundle and unpacks them into `dest`, as a worker would. */
async function materialize(
  entries: CondaBundleEntry[],
  dest: string,
): Promise<void> {
  const bundle = await writeBundle({ entries, outDir: await tempDir() });
  await unpackBundle({
    file: bundle.path,
    dest,
    expectedDigest: bundle.digest,
  });
}

/** A directory of the tools a bare worker has (sh, env, coreutils) and no python. */
async function bareToolsDir(base: string): Promise<string> {
  const dir = join(base, "tools");
  await mkdir(dir);
  for (const tool of ["sh", "env", "cat", "ls", "dirname", "basename"]) {
    for (const from of [`/bin/${tool}`, `/usr/bin/${tool}`]) {
      try {
        await lstat(from);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw error;
      }
      await symlink(from, join(dir, tool));
      break;
    }
  }
  return dir;
}

/** sha256 of every regular file and the target of every symlink under `dir`. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel === "" ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) await walk(path);
      else if (d.isSymbolicLink())
        out.set(path, `-> ${await readlink(join(dir, path))}`);
      else
        out.set(
          path,
          createHash("sha256")
            .update(await readFile(join(dir, path)))
            .digest("hex"),
        );
    }
  };
  await walk("");
  return out;
}

async function relocate(env: string, pathEnv: string) {
  return run(
    join(env, "bin", "python3"),
    [join(env, ".envpack", "relocate.py")],
    {
      env: { PATH: pathEnv },
    },
  ).then(
    (r) => ({ exitCode: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      exitCode: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

/** sha256 over a plan's entries: paths, types, execute bits, link targets and bytes. */
async function planDigest(
  prefix: string,
  options: { embeddedPrefix?: string } = {},
): Promise<string> {
  const plan = await planCondaBundle({ prefix, ...options });
  const hash = createHash("sha256");
  for (const e of plan.entries) {
    const bytes =
      e.type !== "file"
        ? undefined
        : e.data
          ? Buffer.from(e.data)
          : await readFile(e.source as string);
    // As the pack worker packs it: byte code settled against its source (hash-based or left out).
    if (bytes !== undefined && e.pyc !== undefined) {
      useNativeAddon(nativeStatFile());
      const fd = openSync(e.source as string, "r");
      let settled;
      try {
        settled = settlePyc(fd, bytes.length, e.pyc);
      } finally {
        closeSync(fd);
      }
      expect(settled, e.path).not.toBe(CHANGED);
      if (settled === OMIT) continue;
      if (settled instanceof Uint8Array) bytes.set(settled, 0);
    }
    hash.update(
      `${e.path}\0${e.type}\0${(e.executable ?? (e.source !== undefined && ((await stat(e.source)).mode & 0o111) !== 0)) ? 1 : 0}\0${e.linkTarget ?? ""}\0`,
    );
    if (bytes !== undefined) hash.update(bytes);
  }
  return hash.digest("hex");
}

/**
 * A copy of the Conda fixture whose fixturepkg record (text and binary placeholders) names the
 * package cache `relink` returns, given a scratch directory and the cache the record named;
 * returns the copy's prefix.
 */
async function copyRelinkingFixturepkg(
  relink: (base: string, cache: string) => Promise<string>,
): Promise<string> {
  const base = await tempDir("envpack-conda-");
  const copyRoot = join(base, "conda-copy");
  // Times kept: the byte code stays up to date with its sources, as in the original.
  await cp(fixture().root, copyRoot, {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
  });
  const copyPrefix = join(copyRoot, "envs", "demo");
  const metaDir = join(copyPrefix, "conda-meta");
  const [name] = (await readdir(metaDir)).filter((f) =>
    f.startsWith("fixturepkg-"),
  );
  const file = join(metaDir, name as string);
  const record = JSON.parse(await readFile(file, "utf8")) as Record<
    string,
    unknown
  >;
  const cache = await relink(base, record["extracted_package_dir"] as string);
  record["extracted_package_dir"] = cache;
  record["link"] = { source: cache, type: 1 };
  await writeFile(file, JSON.stringify(record));
  return copyPrefix;
}

describe("planCondaBundle", () => {
  it("selects files as conda-pack does and records every placeholder", async () => {
    const warnings: WarnEvent[] = [];
    const plan = await planCondaBundle({
      prefix: fixture().prefix,
      onWarn: (w) => warnings.push(w),
    });
    expect(warnings).toEqual([]);
    const paths = plan.entries.map((e) => e.path);
    expect(paths).toEqual([...paths].sort());
    const byPath = new Map(plan.entries.map((e) => [e.path, e]));
    // Unmanaged byte code of managed sources is dropped, so is byte code embedding the prefix (six's);
    // the pip-installed jsonpointer's byte code, compiled elsewhere, stays.
    expect(
      paths.some((p) => p.startsWith("lib/python3.11/encodings/__pycache__/")),
    ).toBe(false);
    expect(
      byPath.has(
        "lib/python3.11/site-packages/__pycache__/six.cpython-311.pyc",
      ),
    ).toBe(false);
    expect(
      byPath.has(
        "lib/python3.11/site-packages/__pycache__/jsonpointer.cpython-311.pyc",
      ),
    ).toBe(true);
    expect(byPath.get("var/fixturepkg/empty")?.type).toBe("directory");
    expect(byPath.get("bin/python3")).toMatchObject({
      type: "symlink",
      linkTarget: "python3.11",
    });
    expect(
      byPath.get("lib/python3.11/site-packages/jsonpointer.py")?.type,
    ).toBe("file");

    const record = JSON.parse(
      Buffer.from(
        byPath.get("conda-meta/fixturepkg-1.0.0-py311hfx0002_0.json")?.data ??
          [],
      ).toString("utf8"),
    ) as {
      link: { source: string };
      extracted_package_dir: string;
      package_tarball_full_path: string;
    };
    expect(record.link.source).toBe("");
    expect(record.extracted_package_dir).toBe("");
    expect(record.package_tarball_full_path).toBe("");

    const relocation = new Map(plan.relocation.files.map((f) => [f.path, f]));
    expect(plan.relocation.placeholder.startsWith(PLACEHOLDER_START)).toBe(
      true,
    );
    expect(plan.relocation.placeholder).toHaveLength(255);
    expect(relocation.get("share/fixturepkg/locator.bin")?.mode).toBe("binary");
    for (const path of [
      "bin/fixture-env.sh",
      "bin/fixture-twice",
      "bin/fixture-tool",
      "etc/fixturepkg/config.ini",
      "lib/pkgconfig/python-3.11.pc",
      "lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py",
      "bin/jsonpointer",
    ])
      expect(relocation.get(path)?.mode, path).toBe("text");
    expect(relocation.get("bin/fixture-twice")?.shebang).toBe(true);
    expect(relocation.get("bin/fixture-env.sh")?.shebang).toBeUndefined();
    // No entry holds the build machine's prefix.
    const prefix = Buffer.from(fixture().prefix);
    for (const entry of plan.entries) {
      if (entry.type !== "file" || entry.path.endsWith(".pyc")) continue;
      const bytes = entry.data
        ? Buffer.from(entry.data)
        : await readFile(entry.source as string);
      expect(bytes.includes(prefix), entry.path).toBe(false);
    }
    expect(byPath.get(".envpack/relocate.py")?.data).toBeDefined();
  });

  it("unpacked at a longer path and relocated, runs with the bundle's python and no system python", async () => {
    const base = await tempDir("envpack-conda-");
    const env = join(
      base,
      "a-longer-destination-directory-than-the-fixture",
      "env",
    );
    const plan = await planCondaBundle({ prefix: fixture().prefix });
    await materialize(plan.entries, env);
    const tools = await bareToolsDir(base);
    const pathEnv = `${join(env, "bin")}:${tools}`;
    await expect(
      run("sh", ["-c", "command -v python3 || command -v python"], {
        env: { PATH: tools },
      }),
    ).rejects.toThrow();

    const locatorBefore = await readFile(
      join(env, "share/fixturepkg/locator.bin"),
    );
    const relocated = await relocate(env, pathEnv);
    expect(relocated.stderr).toBe("");
    expect(relocated.exitCode).toBe(0);

    const probe = [
      "import json, sys, six, jsonpointer, fixturepkg",
      "print(json.dumps({'prefix': sys.prefix, 'check': fixturepkg.check(), 'six': six.__file__, 'jsonpointer': jsonpointer.__file__}))",
    ].join("\n");
    const { stdout } = await run(
      join(env, "bin", "python3.11"),
      ["-c", probe],
      {
        env: { PATH: pathEnv },
      },
    );
    const out = JSON.parse(stdout) as {
      prefix: string;
      check: Record<string, string | boolean>;
      six: string;
      jsonpointer: string;
    };
    expect(out.prefix).toBe(env);
    expect(out.six.startsWith(`${env}/`)).toBe(true);
    expect(out.jsonpointer.startsWith(`${env}/`)).toBe(true);
    expect(out.check).toMatchObject({
      data_dir: `${env}/share/fixturepkg`,
      data_dir_exists: true,
      data_dir_in_prefix: true,
      locator: `${env}/share/fixturepkg/data.txt`,
      locator_exists: true,
      locator_in_prefix: true,
    });

    const locator = await readFile(join(env, "share/fixturepkg/locator.bin"));
    expect(locator.length).toBe(locatorBefore.length);
    const run0 = Buffer.from(`PATH:${env}/share/fixturepkg/data.txt\0`);
    const at = locator.indexOf(run0);
    expect(at).toBeGreaterThan(0);
    const padding = 255 - Buffer.byteLength(env);
    expect(
      locator
        .subarray(at + run0.length, at + run0.length + padding)
        .every((b) => b === 0),
    ).toBe(true);

    expect(
      await readFile(join(env, "etc/fixturepkg/config.ini"), "utf8"),
    ).toContain(`data_dir = ${env}/share/fixturepkg`);
    const twice = await readFile(join(env, "bin/fixture-twice"), "utf8");
    expect(twice.split("\n")[0]).toBe(`#!${env}/bin/python3.11`);
    expect(twice).toContain(`${env}/share`);

    const tool = await run(join(env, "bin", "fixture-tool"), [], {
      env: { PATH: pathEnv },
    });
    expect(JSON.parse(tool.stdout)).toMatchObject({
      locator_in_prefix: true,
      data_dir_in_prefix: true,
    });
    const jp = await run(join(env, "bin", "jsonpointer"), ["--help"], {
      env: { PATH: pathEnv },
    });
    expect(jp.stdout).toContain("usage");
    const envSh = await run(join(env, "bin", "fixture-env.sh"), [], {
      env: { PATH: pathEnv },
    });
    expect(envSh.stdout).toContain(env);

    // Only the conda-meta records (paths_data) and the relocation record still name the placeholder.
    const leftovers: string[] = [];
    for (const [path] of await snapshot(env)) {
      if (
        path.startsWith("conda-meta/") ||
        path.startsWith(".envpack/") ||
        path.endsWith(".pyc")
      )
        continue;
      if ((await readFile(join(env, path))).includes(PLACEHOLDER_START))
        leftovers.push(path);
    }
    expect(leftovers).toEqual([]);

    // Running again for the same prefix changes nothing.
    const before = await snapshot(env);
    expect((await relocate(env, pathEnv)).exitCode).toBe(0);
    expect(await snapshot(env)).toEqual(before);
  });

  it("relocates again from the recorded prefix when the environment is moved", async () => {
    const base = await tempDir("envpack-conda-");
    const first = join(base, "first", "env");
    const plan = await planCondaBundle({ prefix: fixture().prefix });
    await materialize(plan.entries, first);
    const tools = await bareToolsDir(base);
    expect(
      (await relocate(first, `${join(first, "bin")}:${tools}`)).exitCode,
    ).toBe(0);
    const second = join(base, "moved-to-a-somewhat-longer-place", "env");
    await mkdir(dirname(second), { recursive: true });
    await cp(first, second, { recursive: true, verbatimSymlinks: true });
    const pathEnv = `${join(second, "bin")}:${tools}`;
    const relocated = await relocate(second, pathEnv);
    expect(relocated.stderr).toBe("");
    const tool = await run(join(second, "bin", "fixture-tool"), [], {
      env: { PATH: pathEnv },
    });
    expect(JSON.parse(tool.stdout)).toMatchObject({
      prefix: second,
      locator: `${second}/share/fixturepkg/data.txt`,
      data_dir: `${second}/share/fixturepkg`,
    });
    expect(
      (await readFile(join(second, "bin/fixture-twice"), "utf8")).split(
        "\n",
      )[0],
    ).toBe(`#!${second}/bin/python3.11`);
  });

  it("refuses a target path longer than the placeholder and modifies nothing", async () => {
    const base = await tempDir("envpack-conda-");
    let env = base;
    while (Buffer.byteLength(env) <= 260)
      env = join(env, "a-deep-directory-level-for-a-long-prefix");
    const plan = await planCondaBundle({ prefix: fixture().prefix });
    await materialize(plan.entries, env);
    const tools = await bareToolsDir(base);
    const before = await snapshot(env);
    const relocated = await relocate(env, `${join(env, "bin")}:${tools}`);
    expect(relocated.exitCode).toBe(1);
    expect(relocated.stderr).toContain("nothing was modified");
    expect(relocated.stderr).toContain("share/fixturepkg/locator.bin");
    expect(relocated.stderr).toContain("255");
    const after = await snapshot(env);
    for (const [path, hash] of before) expect(after.get(path), path).toBe(hash);
    // Only the interpreter's own start-up byte code may appear (the runner does not pass -B).
    const added = [...after.keys()].filter((p) => !before.has(p));
    expect(added.filter((p) => !/\/__pycache__\/[^/]+\.pyc$/.test(p))).toEqual(
      [],
    );
  });

  it("gives byte-identical plans for a copy at another path with other mtimes", async () => {
    const base = await tempDir("envpack-conda-");
    const { root } = fixture();
    const copyRoot = join(base, "elsewhere", "conda-copy");
    await cp(root, copyRoot, { recursive: true, verbatimSymlinks: true });
    const copyPrefix = join(copyRoot, "envs", "demo");
    // Make the copy what conda and pip would have installed there: text files name the copy's
    // paths (records point at the copy's package cache), byte code embeds the copy's path and
    // the mtime its source has there.
    const old = new Date("2001-02-03T04:05:06Z");
    for (const [path] of await snapshot(copyPrefix)) {
      const file = join(copyPrefix, path);
      if ((await lstat(file)).isSymbolicLink()) continue;
      const bytes = await readFile(file);
      const text = bytes.toString("utf8");
      if (
        !path.endsWith(".pyc") &&
        Buffer.from(text).equals(bytes) &&
        text.includes(root)
      )
        await writeFile(file, text.split(root).join(copyRoot));
      if (path.endsWith(".pyc") && bytes.readUInt32LE(4) === 0) {
        bytes.writeUInt32LE(old.getTime() / 1000, 8);
        await writeFile(file, bytes);
      }
      await utimes(file, old, old);
    }
    await run(join(copyPrefix, "bin", "python3.11"), [
      "-c",
      "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
      join(copyPrefix, "lib/python3.11/site-packages/six.py"),
      join(
        copyPrefix,
        "lib/python3.11/site-packages/__pycache__/six.cpython-311.pyc",
      ),
    ]);
    expect(
      await readFile(join(copyPrefix, "bin/jsonpointer"), "utf8"),
    ).toContain(copyPrefix);

    expect(await planDigest(copyPrefix)).toBe(
      await planDigest(fixture().prefix),
    );
  });

  it("packs an uncached package's files from the prefix with their placeholders put back", async () => {
    const { prefix } = fixture();
    // The record of fixturepkg names a package cache that is gone.
    const copyPrefix = await copyRelinkingFixturepkg(async (base) =>
      join(base, "gone"),
    );

    const warnings: WarnEvent[] = [];
    const uncached = await planCondaBundle({
      prefix: copyPrefix,
      embeddedPrefix: prefix,
      onWarn: (w) => warnings.push(w),
    });
    expect(warnings.map((w) => [w.code, w.data?.["package"]])).toEqual([
      ["ENVPACK_WARN_CONDA_UNCACHED", "fixturepkg"],
    ]);
    const cached = await planCondaBundle({ prefix });
    // Read from the record's paths_data: the same relocation record and the same bytes.
    expect(uncached.relocation).toEqual(cached.relocation);
    expect(
      uncached.entries.find((e) => e.path === "share/fixturepkg/locator.bin")
        ?.data,
    ).toBeDefined();
    expect(await planDigest(copyPrefix, { embeddedPrefix: prefix })).toBe(
      await planDigest(prefix),
    );
  });

  it("--prune keeps the named packages, their depends closure and python", async () => {
    const all = await planCondaBundle({ prefix: fixture().prefix });
    const pruned = await planCondaBundle({
      prefix: fixture().prefix,
      keep: new Set(["six"]),
    });
    const paths = new Set(pruned.entries.map((e) => e.path));
    expect(
      all.entries.some((e) =>
        e.path.startsWith("lib/python3.11/site-packages/fixturepkg/"),
      ),
    ).toBe(true);
    expect(
      [...paths].some((p) =>
        p.startsWith("lib/python3.11/site-packages/fixturepkg/"),
      ),
    ).toBe(false);
    expect(paths.has("conda-meta/fixturepkg-1.0.0-py311hfx0002_0.json")).toBe(
      false,
    );
    expect(paths.has("share/fixturepkg/locator.bin")).toBe(false);
    expect(paths.has("lib/python3.11/site-packages/six.py")).toBe(true);
    expect(paths.has("bin/python3.11")).toBe(true);
    expect(paths.has("conda-meta/python-3.11.7-hfx0000_0_cpython.json")).toBe(
      true,
    );
    // pip-installed jsonpointer was not kept: its files go, byte code included.
    expect(paths.has("lib/python3.11/site-packages/jsonpointer.py")).toBe(
      false,
    );
    expect(
      paths.has(
        "lib/python3.11/site-packages/__pycache__/jsonpointer.cpython-311.pyc",
      ),
    ).toBe(false);
    expect(paths.has("bin/jsonpointer")).toBe(false);
    expect(
      pruned.relocation.files.some((f) =>
        f.path.startsWith("share/fixturepkg/"),
      ),
    ).toBe(false);

    const withPip = await planCondaBundle({
      prefix: fixture().prefix,
      keep: new Set(["conda:fixturepkg", "pip:jsonpointer"]),
    });
    const kept = new Set(withPip.entries.map((e) => e.path));
    expect(kept.has("lib/python3.11/site-packages/six.py")).toBe(true);
    expect(kept.has("lib/python3.11/site-packages/jsonpointer.py")).toBe(true);
    expect(kept.has("bin/jsonpointer")).toBe(true);
  });
});

describe("planCondaBundle with a legacy package cache", () => {
  it("reads placeholders from info/files and info/has_prefix when there is no paths.json", async () => {
    const { prefix } = fixture();
    // fixturepkg's cache as old conda-build left it: the file list and has_prefix, no paths.json.
    let legacy = "";
    const copyPrefix = await copyRelinkingFixturepkg(async (base, cache) => {
      legacy = join(base, "legacy-cache");
      await cp(cache, legacy, { recursive: true, verbatimSymlinks: true });
      await rm(join(legacy, "info", "paths.json"));
      return legacy;
    });
    expect(
      await readFile(join(legacy, "info", "has_prefix"), "utf8"),
    ).toContain("share/fixturepkg/locator.bin");

    const legacyPlan = await planCondaBundle({
      prefix: copyPrefix,
      embeddedPrefix: prefix,
    });
    const cached = await planCondaBundle({ prefix });
    expect(legacyPlan.relocation).toEqual(cached.relocation);
    expect(
      legacyPlan.entries.find((e) => e.path === "share/fixturepkg/locator.bin")
        ?.source,
    ).toBe(join(legacy, "share/fixturepkg/locator.bin"));
    expect(await planDigest(copyPrefix, { embeddedPrefix: prefix })).toBe(
      await planDigest(prefix),
    );
  });
});

describe("rewriteCondaMeta", () => {
  /** The reference: a deep copy with every object's keys inserted in sorted order. */
  const sortedCopy = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sortedCopy);
    if (value === null || typeof value !== "object") return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort())
      out[key] = sortedCopy((value as Record<string, unknown>)[key]);
    return out;
  };

  it("writes what a sorted copy would, integer-like keys included, and leaves the record alone", () => {
    const record = {
      version: "1.0",
      name: "pkg",
      "10": "ten",
      "9": "nine",
      "01": "not an index",
      "4294967295": "not an index either",
      link: { type: 1, source: "/opt/pkgs/pkg-1.0" },
      extracted_package_dir: "/opt/pkgs/pkg-1.0",
      package_tarball_full_path: "/opt/pkgs/pkg-1.0.conda",
      depends: ["python >=3.9", "six"],
      paths_data: {
        paths_version: 1,
        paths: [
          { size_in_bytes: 3, _path: "bin/x", path_type: "hardlink" },
          {
            _path: "lib/y",
            sha256: "ab",
            nested: { z: null, a: [1, { d: 1, c: 2 }] },
          },
        ],
      },
    };
    const before = JSON.stringify(record);
    const expected = sortedCopy({
      ...record,
      extracted_package_dir: "",
      package_tarball_full_path: "",
      link: { ...record.link, source: "" },
    });
    expect(rewriteCondaMeta(record)).toBe(JSON.stringify(expected, null, 1));
    expect(JSON.stringify(record)).toBe(before);
  });

  it("writes the same for a record whose keys are sorted already, and for one unsorted deep inside", () => {
    const sorted = sortedCopy({
      "2": "two",
      "10": "ten",
      build: "0",
      depends: ["six"],
      link: { source: "/opt/pkgs/pkg-1.0", type: 1 },
      name: "pkg",
      paths_data: {
        paths: [
          { _path: "bin/x", path_type: "hardlink", size_in_bytes: 3 },
          { _path: "lib/y", nested: { a: [1, { c: 2, d: 1 }], z: null } },
        ],
        paths_version: 1,
      },
    }) as Record<string, unknown>;
    const expected = (value: Record<string, unknown>) =>
      JSON.stringify(
        sortedCopy({ ...value, link: { source: "", type: 1 } }),
        null,
        1,
      );
    expect(rewriteCondaMeta(sorted)).toBe(expected(sorted));
    const deep = structuredClone(sorted);
    const paths = (deep["paths_data"] as { paths: Record<string, unknown>[] })
      .paths;
    paths[1] = { nested: { z: null, a: [1, { d: 1, c: 2 }] }, _path: "lib/y" };
    expect(rewriteCondaMeta(deep)).toBe(expected(sorted));
  });
});

describe("packCondaWithCondaPack", () => {
  it("repacks conda-pack's archive into envpack entries", async () => {
    // conda-pack cannot be installed here (no conda, no package index) and CI has none, so this
    // fake stands in for the external tool: it writes a real tar.gz of the prefix, as conda-pack
    // does (conda-unpack and activation scripts added, archive members relative to the prefix).
    const base = await tempDir("envpack-conda-pack-");
    const fakeBin = join(base, "fake-bin");
    await mkdir(fakeBin);
    const script = [
      "#!/bin/sh",
      "set -e",
      'while [ $# -gt 0 ]; do case "$1" in -p) prefix=$2; shift 2;; -o) out=$2; shift 2;; *) shift;; esac; done',
      "stage=$(mktemp -d)",
      'cp -a "$prefix/." "$stage/"',
      // conda-pack empties the records' local paths, so the repack sees no package cache.
      'sed -i -e \'s|"source": "[^"]*"|"source": ""|\' -e \'s|"extracted_package_dir": "[^"]*"|"extracted_package_dir": ""|\' "$stage"/conda-meta/*.json',
      'printf "#!/usr/bin/env python\\n# conda-unpack stand-in\\n" > "$stage/bin/conda-unpack"',
      'printf "# stand-in\\n" > "$stage/bin/activate"',
      'tar -czf "$out" -C "$stage" .',
      'rm -rf "$stage"',
    ].join("\n");
    await writeFile(join(fakeBin, "conda-pack"), `${script}\n`, {
      mode: 0o755,
    });
    const originalPath = process.env.PATH;
    process.env.PATH = `${fakeBin}:${originalPath ?? ""}`;
    try {
      const plan = await packCondaWithCondaPack({
        prefix: fixture().prefix,
        tempDir: base,
      });
      try {
        const paths = new Set(plan.entries.map((e) => e.path));
        expect(paths.has("bin/conda-unpack")).toBe(false);
        expect(paths.has("bin/activate")).toBe(false);
        expect(paths.has("lib/python3.11/site-packages/six.py")).toBe(true);
        const relocation = new Map(
          plan.relocation.files.map((f) => [f.path, f]),
        );
        expect(relocation.get("share/fixturepkg/locator.bin")?.mode).toBe(
          "binary",
        );
        expect(relocation.get("bin/jsonpointer")?.mode).toBe("text");
        const env = join(base, "unpacked-somewhere-else", "env");
        await materialize(plan.entries, env);
        const tools = await bareToolsDir(base);
        const pathEnv = `${join(env, "bin")}:${tools}`;
        expect((await relocate(env, pathEnv)).exitCode).toBe(0);
        const tool = await run(join(env, "bin", "fixture-tool"), [], {
          env: { PATH: pathEnv },
        });
        expect(JSON.parse(tool.stdout)).toMatchObject({
          prefix: env,
          locator_in_prefix: true,
        });
      } finally {
        await plan.dispose();
      }
    } finally {
      process.env.PATH = originalPath;
    }
  });
});
