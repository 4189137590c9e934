// cache gc and the memo stores builds and scans keep in the cache directory: unused entries,
// retired formats and dead writers' temps go, what builds use stays, and nothing gc removes makes
// a later build give other digests.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  appendFile,
  mkdir,
  readFile,
  readdir,
  rm,
  stat,
  utimes,
  writeFile,
} from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import {
  build,
  cacheGc,
  cacheList,
  scan,
  type BuildResult,
} from "../../src/api/index.js";
import { MEMO_STORES, PACKAGE_TREES_DIR } from "../../src/api/cache-memo.js";
import { tempPathFor } from "../../src/core/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { BIN, envpack } from "../helpers/cli.js";
import { writeCondaProbe } from "../helpers/layered-app.js";
import { tempDir } from "../helpers/temp-dir.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const BIG = 10 * 1024 ** 3;

/** The cache's own directories that are not memo stores. */
const BLOB_DIRS = ["blobs", "index", "envs", "runtimes", "tmp"];

function buildHello(app: string, cacheDir: string): Promise<BuildResult> {
  return build({ entries: ["src/main.ts"], cwd: app, cacheDir });
}

/** What a build result says of its bytes: the same bundle is the same answer. */
const digestsOf = (r: BuildResult) => ({
  digest: r.digest,
  inputDigest: r.inputDigest,
  layers: r.layers.map((l) => [l.role, l.digest]),
});

/** Every file under `cacheDir` outside the blob store, as a relative POSIX path. */
async function memoFiles(cacheDir: string): Promise<string[]> {
  const entries = await readdir(cacheDir, {
    recursive: true,
    withFileTypes: true,
  });
  return entries
    .filter((e) => e.isFile())
    .map((e) =>
      relative(cacheDir, join(e.parentPath, e.name)).split(sep).join("/"),
    )
    .filter((p) => !BLOB_DIRS.includes(p.split("/")[0] as string))
    .sort();
}

/** Every file builds and scans write outside the blob store is in a store gc knows. */
function expectKnown(files: string[]): void {
  const known = [...MEMO_STORES.map((s) => s.dir), PACKAGE_TREES_DIR];
  for (const file of files)
    expect(known, file).toContain(file.slice(0, file.lastIndexOf("/")));
}

/** Sets access and modification times of these cache files `days` back. */
async function age(
  cacheDir: string,
  files: string[],
  days: number,
): Promise<void> {
  const then = new Date(Date.now() - days * DAY_MS);
  for (const file of files) await utimes(join(cacheDir, file), then, then);
}

/**
 * A temp file that a writer made as the atomic write does (tempPathFor, in its own process) and
 * left when it died; returns the temp's path and the dead writer's pid.
 */
async function deadWritersTemp(
  target: string,
): Promise<{ path: string; pid: number }> {
  const core = join(dirname(BIN), "..", "core", "atomic-write.js");
  const script = `const { tempPathFor } = await import(${JSON.stringify(core)});
const { writeFileSync } = await import("node:fs");
const temp = tempPathFor(${JSON.stringify(target)});
writeFileSync(temp, "half");
console.log(JSON.stringify({ path: temp, pid: process.pid }));`;
  const { stdout } = await promisify(execFile)(process.execPath, [
    "--input-type=module",
    "-e",
    script,
  ]);
  return JSON.parse(stdout) as { path: string; pid: number };
}

describe("cache gc and the memo stores", () => {
  it("removes entries unused since the oldest kept bundle, retired fingerprints and dead writers' temps; keeps what the last build used", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const main = join(app, "src", "main.ts");
    const v1Text = await readFile(main, "utf8");
    const v1 = await buildHello(app, cacheDir);
    const afterV1 = await memoFiles(cacheDir);
    const v1Main = [
      `scan/app/${createHash("sha256").update(v1Text).digest("hex")}.ts.json`,
    ];
    const v1Greet: string[] = [];
    for (const file of afterV1.filter((f) => f.startsWith("compiled/")))
      ((await readFile(join(cacheDir, file), "utf8")).includes("function greet")
        ? v1Greet
        : v1Main
      ).push(file);
    expect(v1Main).toHaveLength(2);
    // Everything v1 wrote looks ten days old; v2's build reads what it still uses (relatime
    // moves an access time older than a day) and writes what it learns.
    await age(cacheDir, afterV1, 10);
    const aged = Date.now() - 9 * DAY_MS;
    await appendFile(main, 'console.log("v2");\n');
    const v2 = await buildHello(app, cacheDir);
    await scan({ entries: ["src/main.ts"], cwd: app, cacheDir });
    const afterV2 = await memoFiles(cacheDir);
    const unused: string[] = [];
    for (const file of afterV1)
      if (
        !file.startsWith(`${PACKAGE_TREES_DIR}/`) &&
        (await stat(join(cacheDir, file))).atimeMs < aged &&
        (await stat(join(cacheDir, file))).mtimeMs < aged
      )
        unused.push(file);
    // v1's main.ts (its imports and compiled output, by content) is what v2 no longer reads.
    expect(unused).toEqual(expect.arrayContaining(v1Main));
    // What it still reads (greet.ts's compiled output, the package traversal) is used.
    const traversal = afterV1.filter((f) =>
      f.startsWith("scan/npm-traversals/"),
    );
    expect(traversal).toHaveLength(1);
    expect(unused).not.toContain(traversal[0]);
    expect(unused).not.toContain(v1Greet[0]);

    expectKnown(afterV2);
    for (const dir of [...MEMO_STORES.map((s) => s.dir), PACKAGE_TREES_DIR])
      expect(
        dir.startsWith("conda/") ||
          afterV2.some((f) => f.startsWith(`${dir}/`)),
        dir,
      ).toBe(true);

    // A fingerprint in the format before `.fp`, as an older envpack left it beside the current one.
    const fp = afterV2.find((f) => f.startsWith("fingerprints/")) as string;
    const retired = fp.replace(/\.fp$/, ".json");
    await writeFile(
      join(cacheDir, retired),
      JSON.stringify({
        inputDigest: v1.inputDigest,
        kind: "node",
        stats: [],
        trees: [],
      }),
    );
    // A package's scan in the format before one `.scans` file per set of entries.
    const retiredScan = `scan/npm/${"0".repeat(64)}.json`;
    await writeFile(join(cacheDir, retiredScan), "{}");
    const deadTemp = await deadWritersTemp(
      join(cacheDir, "scan", "npm", "x.json"),
    );
    const liveTemp = tempPathFor(join(cacheDir, "compiled", "y.json"));
    await writeFile(liveTemp, "being written");
    await mkdir(join(cacheDir, "tmp", `build-${deadTemp.pid}-0a1b2c`), {
      recursive: true,
    });
    await mkdir(join(cacheDir, "tmp", `build-${process.pid}-0a1b2c`), {
      recursive: true,
    });

    const gc = await cacheGc(cacheDir, BIG);
    expect(gc.removed).toEqual([]);
    const left = await memoFiles(cacheDir);
    const gone = [
      ...afterV2,
      retired,
      retiredScan,
      relative(cacheDir, deadTemp.path),
    ].filter((f) => !left.includes(f));
    expect(gone.sort()).toEqual(
      [
        ...unused,
        retired,
        retiredScan,
        relative(cacheDir, deadTemp.path),
      ].sort(),
    );
    expect(left).toContain(relative(cacheDir, liveTemp));
    expect(gc.memo.files).toBe(gone.length);
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([
      `build-${process.pid}-0a1b2c`,
    ]);
    await rm(liveTemp);

    // Slower, not wrong: v2 is a hit; v1 again is scanned afresh and gives v1's bundle.
    const again = await buildHello(app, cacheDir);
    expect(again.source).toBe("cache");
    expect(digestsOf(again)).toEqual(digestsOf(v2));
    await writeFile(main, v1Text);
    expect(digestsOf(await buildHello(app, cacheDir))).toEqual(digestsOf(v1));
  });

  it("gc --max-size 0 empties every memo store; the next build gives the same bundle, input and layer digests", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    await buildHello(app, cacheDir);
    await appendFile(join(app, "src", "main.ts"), 'console.log("v2");\n');
    const before = await buildHello(app, cacheDir);
    const listed = await cacheList(cacheDir);
    expect(listed.memo.files).toBe((await memoFiles(cacheDir)).length);

    const gc = await cacheGc(cacheDir, 0);
    expect(gc.kept).toBe(0);
    // package-trees/ records of a project that exists stay: they are what shows an edit in place.
    const left = await memoFiles(cacheDir);
    expect(left.every((f) => f.startsWith(`${PACKAGE_TREES_DIR}/`))).toBe(true);
    expect(gc.memo.files).toBe(listed.memo.files - left.length);
    expect(gc.memo.bytes).toBeGreaterThan(0);

    const rebuilt = await buildHello(app, cacheDir);
    expect(rebuilt.source).toBe("built");
    expect(digestsOf(rebuilt)).toEqual(digestsOf(before));
  });

  it("a package edited in place is still seen after gc; records of a project that is gone are removed", async () => {
    const cacheDir = join(await tempDir(), "cache");
    const gone = await appCopy("hello");
    await buildHello(gone, cacheDir);
    const goneRecords = (
      await readdir(join(cacheDir, PACKAGE_TREES_DIR))
    ).sort();
    await rm(gone, { recursive: true });

    const app = await appCopy("hello");
    const pristine = await buildHello(app, cacheDir);
    await appendFile(
      join(app, "node_modules", "ms", "index.js"),
      "\n// local fix\n",
    );
    const edited = await buildHello(app, cacheDir);
    expect(edited.inputDigest).not.toBe(pristine.inputDigest);

    await cacheGc(cacheDir, 0);
    const records = await readdir(join(cacheDir, PACKAGE_TREES_DIR));
    expect(records).toHaveLength(goneRecords.length);
    expect(records.some((r) => goneRecords.includes(r))).toBe(false);
    const rebuilt = await buildHello(app, cacheDir);
    expect(rebuilt.source).toBe("built");
    expect(digestsOf(rebuilt)).toEqual(digestsOf(edited));
  });

  it("a Conda build's memo files are in stores gc knows; after gc empties them the rebuild gives the same digests", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const app = await writeCondaProbe();
    const cacheDir = join(await tempDir(), "cache");
    const buildProbe = () =>
      build({ entries: ["main.py"], cwd: app, env: conda.prefix, cacheDir });
    const before = await buildProbe();
    const files = await memoFiles(cacheDir);
    expect(files.some((f) => f.startsWith("conda/builtins/"))).toBe(true);
    expectKnown(files);

    await cacheGc(cacheDir, 0);
    expect(await memoFiles(cacheDir)).toEqual([]);
    const rebuilt = await buildProbe();
    expect(rebuilt.source).toBe("built");
    expect(digestsOf(rebuilt)).toEqual(digestsOf(before));
  });

  it("builds running while gc prunes every memo entry give the bundles they gave before", async () => {
    const app = await appCopy("hello");
    const cacheDir = join(await tempDir(), "cache");
    const main = join(app, "src", "main.ts");
    const texts = [
      await readFile(main, "utf8"),
      `${await readFile(main, "utf8")}console.log("v2");\n`,
    ];
    const expected: BuildResult[] = [];
    for (const text of texts) {
      await writeFile(main, text);
      expected.push(await buildHello(app, cacheDir));
    }
    for (let round = 0; round < 4; round += 1) {
      await writeFile(main, texts[round % 2] as string);
      await age(cacheDir, await memoFiles(cacheDir), 10);
      const [built, gc] = await Promise.all([
        buildHello(app, cacheDir),
        envpack(["cache", "gc", "--json", "--max-size", "10G"], {
          env: { ENVPACK_CACHE_DIR: cacheDir },
        }),
      ]);
      expect(gc.exitCode, gc.stderr).toBe(0);
      expect(digestsOf(built)).toEqual(
        digestsOf(expected[round % 2] as BuildResult),
      );
    }
  });
});
