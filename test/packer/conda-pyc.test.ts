// Byte code in Conda bundles: up-to-date .pyc files ship as hash-based ones that the bundle's own
// python loads after either unpacker (no recompiling), stale ones are left out.

import { randomBytes } from "node:crypto";
import { cp, open, readFile, readdir, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import {
  OMIT,
  readPycHeader,
  settlePyc,
  sourceHash,
  useNativeAddon,
} from "../../packer/conda/hash-based-pyc.mjs";
import type { CondaBundleEntry } from "../../packer/conda/index.js";
import {
  ensureUnpacked,
  planCondaBundle,
  unpackBundle,
  writeBundle,
} from "../../packer/index.js";
import { nativeStatFile } from "../../src/core/index.js";
import { condaProbeBundle } from "../helpers/layered-app.js";
import { workerPath } from "../helpers/min-path.js";
import { tempDir } from "../helpers/temp-dir.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");
const SITE = "lib/python3.11/site-packages";
const JSONPOINTER_PYC = `${SITE}/__pycache__/jsonpointer.cpython-311.pyc`;

function fixture() {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda;
}

/**
 * What the `-v` lines of `python -c "import <module>"` say about the module: loaded from its
 * byte code ("<pyc> matches <py>") or compiled from source ("code object from <py>").
 */
async function importVerbose(python: string, module: string) {
  const { stderr } = await execa(python, ["-v", "-c", `import ${module}`], {
    env: { PATH: await workerPath() },
    extendEnv: false,
  });
  const lines = stderr.split("\n").filter((l) => l.endsWith(`/${module}.py`));
  return {
    fromPyc: lines.some((l) => l.includes(".pyc matches ")),
    compiled: lines.some((l) => l.startsWith("# code object from")),
  };
}

/** A copy of the fixture root at another path with every mtime kept; returns its prefix. */
async function fixtureCopy(): Promise<string> {
  const root = join(await tempDir("envpack-conda-pyc-"), "root");
  await cp(fixture().root, root, {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
  });
  return join(root, "envs", "demo");
}

/**
 * The byte code and Python sources of a plan's site-packages as packed: written by writeBundle
 * (the pack worker settles the byte code) and unpacked; their bytes by path.
 */
async function packed(plan: {
  entries: CondaBundleEntry[];
}): Promise<Map<string, Buffer>> {
  const work = await tempDir("envpack-conda-pyc-");
  const bundle = await writeBundle({
    entries: plan.entries.filter(
      (e) => e.type === "file" && e.path.startsWith(`${SITE}/`),
    ),
    outDir: join(work, "out"),
  });
  const dest = join(work, "tree");
  await unpackBundle({
    file: bundle.path,
    dest,
    expectedDigest: bundle.digest,
  });
  const files = new Map<string, Buffer>();
  for (const name of await readdir(join(dest, SITE), { recursive: true })) {
    const path = `${SITE}/${name}`;
    if (/\.pyc?$/.test(path)) files.set(path, await readFile(join(dest, path)));
  }
  return files;
}

describe("byte code in Conda bundles", () => {
  it("hashes sources as importlib.util.source_hash of the fixture's python does", async () => {
    const inputs = [
      ...Array.from({ length: 80 }, (_, n) => randomBytes(n + 1)),
      ...[255, 256, 257, 4095, 70_001].map((n) => randomBytes(n)),
      Buffer.from("print('hello')\n"),
    ];
    const { stdout } = await execa(
      fixture().python,
      [
        "-c",
        "import sys, importlib.util as u\nprint(int.from_bytes(u.MAGIC_NUMBER, 'little'))\nprint(u.source_hash(b'').hex())\nfor l in sys.stdin.read().split():\n    print(u.source_hash(bytes.fromhex(l)).hex())",
      ],
      { input: inputs.map((b) => b.toString("hex")).join("\n") },
    );
    const [magic, ...hashes] = stdout.split("\n");
    expect(
      [Buffer.alloc(0), ...inputs].map((b) =>
        Buffer.from(sourceHash(b, Number(magic))).toString("hex"),
      ),
    ).toEqual(hashes);
  });

  it("marks byte code by path; the packer leaves stale byte code out and hash-based byte code as it is", async () => {
    const plan = await planCondaBundle({ prefix: fixture().prefix });
    const pyc = plan.entries.find((e) => e.path === JSONPOINTER_PYC);
    expect(pyc?.pyc).toEqual({
      source: join(fixture().prefix, SITE, "jsonpointer.py"),
    });

    // Its source edited (a new mtime, the same bytes): the byte code is stale and left out.
    const stale = await fixtureCopy();
    const later = new Date("2031-01-02T03:04:05Z");
    await utimes(join(stale, SITE, "jsonpointer.py"), later, later);
    const staleTree = await packed(await planCondaBundle({ prefix: stale }));
    expect(staleTree.has(`${SITE}/jsonpointer.py`)).toBe(true);
    expect(staleTree.has(JSONPOINTER_PYC)).toBe(false);

    // Its source packed with placeholders (relocation rewrites it): left out as well.
    const rewritten = await packed({
      entries: plan.entries.map((e) =>
        e.path === JSONPOINTER_PYC && e.pyc !== undefined
          ? { ...e, pyc: { ...e.pyc, rewritten: true } }
          : e,
      ),
    });
    expect(rewritten.has(`${SITE}/jsonpointer.py`)).toBe(true);
    expect(rewritten.has(JSONPOINTER_PYC)).toBe(false);

    // Compiled hash-based (named by a relative file name so it embeds no prefix): packed as it is.
    const hashed = await fixtureCopy();
    await execa(join(hashed, "bin", "python3.11"), [
      "-c",
      "import py_compile, sys\npy_compile.compile(sys.argv[1], cfile=sys.argv[2], dfile='jsonpointer.py', doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)",
      join(hashed, SITE, "jsonpointer.py"),
      join(hashed, JSONPOINTER_PYC),
    ]);
    const hashedTree = await packed(await planCondaBundle({ prefix: hashed }));
    expect(hashedTree.get(JSONPOINTER_PYC)).toEqual(
      await readFile(join(hashed, JSONPOINTER_PYC)),
    );
  });

  it("settles byte code alike with the native source hash and without it", async () => {
    // The addon the main thread loaded (as each bundle's start job names it), or none: the
    // JavaScript fallback.
    const addon = nativeStatFile();
    expect(addon).not.toBeNull();
    const settleWith = (
      file: string | null,
      ...args: Parameters<typeof settlePyc>
    ) => {
      useNativeAddon(file);
      return settlePyc(...args);
    };
    // One source edited, so both verdicts are compared: hash-based and left out.
    const prefix = await fixtureCopy();
    const later = new Date("2031-01-02T03:04:05Z");
    await utimes(join(prefix, SITE, "jsonpointer.py"), later, later);
    const marked = (await planCondaBundle({ prefix })).entries.filter(
      (e) => e.pyc !== undefined,
    );
    expect(marked.length).toBeGreaterThan(1);
    const verdicts = new Set<string>();
    for (const entry of marked) {
      const handle = await open(entry.source as string);
      const { size } = await handle.stat();
      const pyc = entry.pyc as { source: string };
      let native, js;
      try {
        native = settleWith(addon, handle.fd, size, pyc);
        js = settleWith(null, handle.fd, size, pyc);
      } finally {
        useNativeAddon(addon);
        await handle.close();
      }
      expect(js, entry.path).toEqual(native);
      verdicts.add(typeof native === "string" ? native : String(native?.[4]));
    }
    expect([...verdicts].sort()).toEqual(["1", OMIT].sort());
  });

  it("gives the source it read whole to keep, its bytes and mode, with the native source hash and without it", async () => {
    const addon = nativeStatFile();
    expect(addon).not.toBeNull();
    const prefix = await fixtureCopy();
    const entry = (await planCondaBundle({ prefix })).entries.find(
      (e) => e.path === JSONPOINTER_PYC,
    );
    const pyc = entry?.pyc as { source: string };
    expect(pyc?.source).toBe(join(prefix, SITE, "jsonpointer.py"));
    const source = await readFile(pyc.source);
    const { mode } = await stat(pyc.source);
    const handle = await open(entry?.source as string);
    try {
      const { size } = await handle.stat();
      for (const file of [addon, null]) {
        useNativeAddon(file);
        const kept: [string, Uint8Array, number][] = [];
        const verdict = settlePyc(handle.fd, size, pyc, (path, read) =>
          kept.push([path, read.bytes, read.mode]),
        );
        expect(verdict, String(file)).toEqual(settlePyc(handle.fd, size, pyc));
        expect(kept.map(([path]) => path)).toEqual([pyc.source]);
        expect(Buffer.from(kept[0]?.[1] ?? []).equals(source)).toBe(true);
        expect(kept[0]?.[2]).toBe(mode);
      }
    } finally {
      useNativeAddon(addon);
      await handle.close();
    }
  });

  it("ships byte code that python loads without compiling after either unpacker", async () => {
    const work = await tempDir("envpack-conda-pyc-");
    const bundle = await condaProbeBundle(
      1,
      join(work, "out"),
      join(work, "build-cache"),
    );
    const hex = bundle.digest.slice("sha256:".length);
    const path = await workerPath();
    const ran = await execa(join(path, "sh"), [RUNNER, bundle.path], {
      env: { PATH: path, ENVPACK_WORKER_CACHE: join(work, "worker") },
      extendEnv: false,
      reject: false,
      stdin: "ignore",
    });
    expect(ran.exitCode, ran.stderr).toBe(0);
    const packed = await ensureUnpacked({
      file: bundle.path,
      digest: bundle.digest,
      envsDir: join(work, "packer", "envs"),
    });
    for (const tree of [join(work, "worker", "envs", hex), packed.dir]) {
      expect(
        await importVerbose(join(tree, "bin", "python3"), "jsonpointer"),
        tree,
      ).toEqual({ fromPyc: true, compiled: false });
      const handle = await open(join(tree, JSONPOINTER_PYC));
      const header = Buffer.alloc(16);
      await handle.read(header, 0, 16, 0);
      await handle.close();
      expect(readPycHeader(header)?.hashBased, tree).toBe(true);
      const source = await readFile(join(tree, SITE, "jsonpointer.py"));
      expect(
        Buffer.from(sourceHash(source, header.readUInt32LE(0))).equals(
          header.subarray(8),
        ),
      ).toBe(true);
    }
  });
});
