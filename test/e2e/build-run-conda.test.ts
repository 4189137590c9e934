// `envpack build` of a Python app against the Conda fixture, then running it from the bundle on
// the host (`envpack run`) and on a "worker" with no Python at all (runtime/envpack-run).

import {
  cp,
  mkdir,
  readdir,
  readFile,
  symlink,
  writeFile,
} from "node:fs/promises";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";
import { workerPath } from "../helpers/min-path.js";
import { prefixOfTree } from "../helpers/layered-app.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");

const APP = `import json, sys, six, jsonpointer, fixturepkg
print(json.dumps({"prefix": sys.prefix, "six": six.__version__, "check": fixturepkg.check()}))
`;

interface Report {
  prefix: string;
  six: string;
  check: {
    data_dir_in_prefix: boolean;
    locator_in_prefix: boolean;
    data_dir_exists: boolean;
    locator_exists: boolean;
  };
}

async function buildApp(): Promise<{
  app: string;
  cache: string;
  digest: string;
  path: string;
}> {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  const app = await tempDir("envpack-pyapp-");
  await writeFile(join(app, "app.py"), APP);
  const cache = join(await tempDir(), "cache");
  const run = await envpack(
    [
      "build",
      "--json",
      "app.py",
      "--env",
      conda.prefix,
      "--out",
      join(cache, "out"),
    ],
    {
      cwd: app,
      env: { ENVPACK_CACHE_DIR: cache },
    },
  );
  expect(run.stderr).not.toMatch(/internal error/);
  expect(run.exitCode).toBe(0);
  const built = JSON.parse(run.stdout) as {
    digest: string;
    path: string;
    kind: string;
  };
  expect(built.kind).toBe("conda");
  return { app, cache, digest: built.digest, path: built.path };
}

function expectRelocatedTo(report: Report, env: string): void {
  expect(report.prefix).toBe(env);
  expect(report.six).toBe("1.17.0");
  expect(report.check).toMatchObject({
    data_dir_in_prefix: true,
    locator_in_prefix: true,
    data_dir_exists: true,
    locator_exists: true,
  });
}

describe("envpack build + run (Conda)", () => {
  it("runs the app with the bundled, relocated interpreter through envpack run", async () => {
    const { cache, digest } = await buildApp();
    const run = await envpack(["run", digest], {
      env: { ENVPACK_CACHE_DIR: cache },
    });
    expect(run.exitCode).toBe(0);
    // Python runs from the relocated base of the runtime and packages layers, which the tree links to.
    const base = await prefixOfTree(join(cache, "envs", digest.slice(7)));
    expect(dirname(base)).toBe(join(cache, "envs", "bases"));
    expectRelocatedTo(JSON.parse(run.stdout) as Report, base);
  });

  it("runs on a worker whose PATH has no python (only sh, tar, zstd, coreutils)", async () => {
    const { path, digest } = await buildApp();
    const worker = await tempDir("envpack-worker-");
    const bin = await workerPath();
    // The index and its layers, as --out wrote them.
    await cp(dirname(path), join(worker, "bundle"), { recursive: true });
    const bundle = join(worker, "bundle", `${digest.slice(7)}.json`);
    const env = {
      PATH: bin,
      HOME: worker,
      ENVPACK_WORKER_CACHE: join(worker, "cache"),
    };
    const run = await execa(RUNNER, [bundle], {
      cwd: worker,
      env,
      extendEnv: false,
      reject: false,
    });
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    const tree = join(worker, "cache", "envs", digest.slice(7));
    const base = await prefixOfTree(tree);
    expect(dirname(base)).toBe(join(worker, "cache", "envs", "bases"));
    expectRelocatedTo(JSON.parse(run.stdout) as Report, base);
    const noPython = await execa(
      "sh",
      ["-c", "command -v python3 || command -v python || echo none"],
      { env, extendEnv: false },
    );
    expect(noPython.stdout).toBe("none");
  });

  it("fails cleanly when the unpack path is longer than the placeholder, leaving nothing behind", async () => {
    const { path } = await buildApp();
    const long = join(
      await tempDir(),
      "a".repeat(100),
      "b".repeat(100),
      "c".repeat(60),
    );
    const run = await envpack(["run", "--json", path], {
      env: { ENVPACK_CACHE_DIR: long },
    });
    expect(run.exitCode).toBe(1);
    const doc = JSON.parse(run.stdout) as {
      error: { code: string; message: string };
    };
    expect(doc.error.code).toBe("ENVPACK_TOOL_FAILED");
    expect(doc.error.message).toMatch(/locator\.bin/);
    // Only the unpacked layers stay (complete, shared by the next try): no tree, no base, no temp.
    expect((await readdir(join(long, "envs"))).sort()).toEqual([
      "bases",
      "layers",
    ]);
    expect(await readdir(join(long, "envs", "bases"))).toEqual([]);
    for (const name of await readdir(join(long, "envs", "layers")))
      expect(name).toMatch(/^[0-9a-f]{64}$/);
  });

  it("packs no absolute path of the build machine into the bundle's manifest", async () => {
    const { path, cache } = await buildApp();
    const dest = join(cache, "peek");
    await mkdir(dest);
    // The manifest travels in the app layer.
    const index = JSON.parse(await readFile(path, "utf8")) as {
      layers: Array<{ role: string; digest: string }>;
    };
    const app = index.layers.find((l) => l.role === "app");
    const layer = join(dirname(path), `${app?.digest.slice(7)}.tar.zst`);
    await execa("sh", [
      "-c",
      `zstd -dc "${layer}" | tar -xf - -C "${dest}" .envpack/manifest.json`,
    ]);
    const manifest = JSON.parse(
      await readFile(join(dest, ".envpack", "manifest.json"), "utf8"),
    ) as { root: string; env: { prefix: string } };
    expect(manifest.root).toBe(".");
    expect(manifest.env.prefix).toBe(".");
  });
});
