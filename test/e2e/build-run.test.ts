// `envpack build` and `envpack run` on a real Node app with real npm dependencies, and the
// worker-side runner with no node on PATH.

import {
  cp,
  readFile,
  readdir,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";
import { workerPath } from "../helpers/min-path.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");

interface BuildJson {
  ok: boolean;
  digest: string;
  path: string;
  cached: boolean;
  inputDigest: string;
  size: number;
  layers: Array<{ role: string; digest: string; size: number }>;
}

const sha256Of = (bytes: Uint8Array) =>
  `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function buildJson(
  cwd: string,
  cache: string,
  args: string[],
): Promise<BuildJson> {
  const run = await envpack(["build", "--json", ...args], {
    cwd,
    env: { ENVPACK_CACHE_DIR: cache },
  });
  expect(run.stderr).not.toMatch(/internal error/);
  expect(run.exitCode).toBe(0);
  return JSON.parse(run.stdout) as BuildJson;
}

describe("envpack build + run (Node)", () => {
  it("builds a bundle named by its digest; an unchanged rebuild is a cache hit that reads no package file", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const out = join(await tempDir(), "out");
    const first = await buildJson(app, cache, ["src/main.ts", "--out", out]);
    expect(first).toMatchObject({ ok: true, cached: false });
    // --out holds the index, named by its digest (the bundle's), and each layer beside it.
    expect(first.path).toBe(join(out, `${first.digest.slice(7)}.json`));
    const bytes = await readFile(first.path);
    expect(sha256Of(bytes)).toBe(first.digest);
    expect(JSON.parse(bytes.toString())).toMatchObject({
      format: 3,
      layers: first.layers.map(({ role, digest, size }) => ({
        role,
        digest,
        size,
      })),
    });
    let size = bytes.length;
    for (const layer of first.layers) {
      const file = await readFile(
        join(out, `${layer.digest.slice(7)}.tar.zst`),
      );
      expect(sha256Of(file)).toBe(layer.digest);
      size += file.length;
    }
    expect(first.size).toBe(size);

    // Backdate the access time of every package file but package.json: any read moves it.
    const backdated: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.isFile() && entry.name !== "package.json") {
          const info = await stat(path);
          await utimes(path, new Date("2001-01-01"), info.mtime);
          backdated.push(path);
        }
      }
    };
    // Package directories only: node_modules/.package-lock.json is the lockfile, watched by stat.
    for (const entry of await readdir(join(app, "node_modules"), {
      withFileTypes: true,
    })) {
      if (entry.isDirectory() && !entry.name.startsWith("."))
        await walk(join(app, "node_modules", entry.name));
    }
    expect(backdated.length).toBeGreaterThan(0);

    const second = await buildJson(app, cache, ["src/main.ts"]);
    expect(second).toMatchObject({
      cached: true,
      digest: first.digest,
      inputDigest: first.inputDigest,
    });
    const read = [];
    for (const path of backdated)
      if ((await stat(path)).atime.getUTCFullYear() !== 2001) read.push(path);
    expect(read).toEqual([]);
  });

  it("rebuilds after an app edit, and the same inputs at another path give the same bytes", async () => {
    const app = await appCopy("hello");
    const other = await appCopy("hello");
    const cacheA = join(await tempDir(), "cache");
    const cacheB = join(await tempDir(), "cache");
    const a = await buildJson(app, cacheA, ["src/main.ts"]);
    const b = await buildJson(other, cacheB, ["src/main.ts"]);
    expect(b.digest).toBe(a.digest);
    await writeFile(join(app, "src", "extra.ts"), "export const extra = 1;\n");
    const main = await readFile(join(app, "src", "main.ts"), "utf8");
    await writeFile(join(app, "src", "main.ts"), `import "./extra";\n${main}`);
    const c = await buildJson(app, cacheA, ["src/main.ts"]);
    expect(c.cached).toBe(false);
    expect(c.digest).not.toBe(a.digest);
  });

  it("packs the node binary (the runtime layer) during the scan: a --manifest build gives the same bytes, a scan ending in a cache hit leaves nothing", async () => {
    const app = await appCopy("hello");
    const cacheA = join(await tempDir(), "cache");
    const a = await buildJson(app, cacheA, ["src/main.ts"]);
    const runtime = a.layers.find((l) => l.role === "runtime");
    const { stdout: listing } = await execa("sh", [
      "-c",
      'zstd -dc "$1" | tar -tf -',
      "sh",
      join(cacheA, "blobs", "sha256", String(runtime?.digest.slice(7))),
    ]);
    expect(listing.split("\n")).toEqual([
      "bin/",
      "bin/node",
      "bin/envpack-node",
    ]);

    const manifest = join(await tempDir(), "manifest.json");
    const scanned = await envpack(["scan", "src/main.ts", "-o", manifest], {
      cwd: app,
    });
    expect(scanned.exitCode).toBe(0);
    const fromManifest = await buildJson(app, join(await tempDir(), "cache"), [
      "--manifest",
      manifest,
    ]);
    expect(fromManifest).toMatchObject({ cached: false, digest: a.digest });

    // A new mtime defeats the stat fingerprint: the scan runs (the packing worker with it) and
    // finds the input digest in the cache.
    const main = join(app, "src", "main.ts");
    await utimes(main, new Date(), new Date(Date.now() + 5000));
    const again = await buildJson(app, cacheA, ["src/main.ts"]);
    expect(again).toMatchObject({ cached: true, digest: a.digest });
    expect(await readdir(join(cacheA, "tmp"))).toEqual([]);
  });

  it("envpack run runs the app with the bundled node, and a command with the bundle's bin first on PATH", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const built = await buildJson(app, cache, ["src/main.ts"]);
    const ran = await envpack(["run", built.digest], {
      cwd: app,
      env: { ENVPACK_CACHE_DIR: cache },
    });
    expect(ran.exitCode).toBe(0);
    expect(ran.stdout).toContain(
      `hello, world, from node ${process.versions.node}`,
    );
    expect(ran.stdout).toContain("90s is 90000 ms, or 2 minutes");
    const version = await envpack(
      ["run", built.path, "--", "node", "-p", "process.execPath"],
      {
        cwd: app,
        env: { ENVPACK_CACHE_DIR: cache },
      },
    );
    expect(version.exitCode).toBe(0);
    expect(version.stdout.trim()).toBe(
      join(cache, "envs", built.digest.slice(7), "bin", "node"),
    );
  });

  it("runtime/envpack-run unpacks once and runs the app with PATH holding only sh, tar, zstd and coreutils", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const built = await buildJson(app, cache, [
      "src/main.ts",
      "--out",
      join(cache, "out"),
    ]);
    const worker = await tempDir("envpack-worker-");
    const isolated = join(worker, "bundle");
    // The index and its layers, as --out wrote them.
    await cp(join(cache, "out"), isolated, { recursive: true });
    const bundle = join(isolated, `${built.digest.slice(7)}.json`);
    // The app's own node_modules must not be reachable: run from an unrelated directory.
    const env = {
      PATH: await workerPath(),
      ENVPACK_WORKER_CACHE: join(worker, "cache"),
      HOME: worker,
    };
    const runs = await Promise.all(
      [1, 2, 3].map(() =>
        execa(RUNNER, [bundle], {
          cwd: worker,
          env,
          extendEnv: false,
          reject: false,
        }),
      ),
    );
    for (const run of runs) {
      expect(run.stderr).toBe("");
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toContain("90s is 90000 ms, or 2 minutes");
    }
    expect(new Set(runs.map((r) => r.stdout)).size).toBe(1);
    expect((await readdir(join(worker, "cache", "envs"))).sort()).toEqual([
      built.digest.slice(7),
      "layers",
    ]);
    const noNode = await execa("sh", ["-c", "command -v node || echo none"], {
      env,
      extendEnv: false,
    });
    expect(noNode.stdout).toBe("none");
  });

  it("envpack-run rejects a bundle whose bytes do not match its name, before unpacking", async () => {
    const worker = await tempDir("envpack-worker-");
    const bundle = join(worker, `${"0".repeat(64)}.tar.zst`);
    await writeFile(bundle, "not a bundle");
    const run = await execa(RUNNER, [bundle], {
      env: { ENVPACK_WORKER_CACHE: join(worker, "cache") },
      reject: false,
    });
    expect(run.exitCode).toBe(4);
    expect(run.stderr).toMatch(/corrupt/);
    expect(await readdir(join(worker, "cache", "envs"))).toEqual([]);
  });
});
