// Builds an app's bundle with the CLI and runs it as a worker would: runtime/envpack-run on a PATH
// with only the worker tools (no node, no python), from an empty directory.

import { join } from "node:path";
import { execa } from "execa";
import { expect } from "vitest";
import { envpack } from "./cli.js";
import { tempDir } from "./temp-dir.js";
import { workerPath } from "./min-path.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");

/** `envpack build --json ARGS` in `dir` with a fresh cache, then the bundle run on a worker: its stdout and the build's result. */
export async function buildAndRunOnWorker(
  dir: string,
  args: string[],
): Promise<{ stdout: string; build: Record<string, unknown> }> {
  const cache = join(await tempDir("envpack-runnable-cache-"), "cache");
  const out = join(cache, "out");
  const built = await envpack(["build", "--json", "--out", out, ...args], {
    cwd: dir,
    env: { ENVPACK_CACHE_DIR: cache },
  });
  expect(built.stderr).not.toMatch(/internal error/);
  expect(built.exitCode, built.stdout + built.stderr).toBe(0);
  const result = JSON.parse(built.stdout) as { path: string };
  const worker = await tempDir("envpack-runnable-worker-");
  const ran = await execa(RUNNER, [result.path], {
    cwd: worker,
    env: {
      PATH: await workerPath(),
      HOME: worker,
      ENVPACK_WORKER_CACHE: join(worker, "cache"),
    },
    extendEnv: false,
    reject: false,
  });
  expect(ran.stderr, ran.stderr).not.toMatch(/Cannot find|ENOENT|unable to/);
  expect(ran.exitCode, String(ran.stderr)).toBe(0);
  return { stdout: String(ran.stdout), build: result };
}
