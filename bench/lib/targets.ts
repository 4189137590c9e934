// The fixtures the build-side benches measure (the large Conda fixture with its numpy app, the
// realworld Node app) in a work directory of the run's own, and a target's build options.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareApp, prepareConda, writeNumpyApp } from "./fixtures.js";

/** What one target builds: entries scanned in `cwd`, with a Conda prefix for Python. */
export interface BenchTarget {
  name: string;
  entries: string[];
  cwd: string;
  env?: string;
}

/** The prepared fixtures of one bench run. */
export interface BenchFixtures {
  /** A fresh directory, removed when the run ends. */
  work: string;
  /** The realworld app's installed directory (a bench that edits it copies it into `work`). */
  appDir: string;
  condaLarge: BenchTarget;
  nodeRealworld: BenchTarget;
}

/** A progress line on stderr (stdout carries the results). */
export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Prepares both fixtures (installing or building them when needed) and a work directory named
 * after `bench`, runs `body` and removes the work directory, whatever `body` did.
 */
export async function withBenchFixtures<T>(
  bench: string,
  body: (fixtures: BenchFixtures) => Promise<T>,
): Promise<T> {
  const [conda, appDir] = await Promise.all([
    prepareConda("large", log),
    prepareApp("realworld", log),
  ]);
  const work = await mkdtemp(join(tmpdir(), `envpack-bench-${bench}-`));
  try {
    return await body({
      work,
      appDir,
      condaLarge: {
        name: "conda-large",
        entries: ["app.py"],
        cwd: await writeNumpyApp(work),
        env: conda.prefix,
      },
      nodeRealworld: {
        name: "node-realworld",
        entries: ["src/main.ts"],
        cwd: appDir,
      },
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The build options of `target` into `cacheDir`. */
export function buildOptionsOf(
  target: BenchTarget,
  cacheDir: string,
): { entries: string[]; cwd: string; env?: string; cacheDir: string } {
  return {
    entries: target.entries,
    cwd: target.cwd,
    ...(target.env === undefined ? {} : { env: target.env }),
    cacheDir,
  };
}
