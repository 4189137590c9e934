// Locates the repository and loads the project's fixture scripts (plain .mjs) with typed signatures.

import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/** A built Conda fixture: `prefix` is the environment, `python` its interpreter. */
export interface CondaFixture {
  root: string;
  prefix: string;
  python: string;
}

type Log = (line: string) => void;

interface AppsModule {
  prepareAppFixtures(options: {
    repo: string;
    log: Log;
    only?: string[];
  }): Promise<Record<string, string>>;
}

interface CondaModule {
  prepareCondaFixture(options: {
    dir: string;
    profile: "small" | "large";
    log: Log;
  }): Promise<CondaFixture>;
}

interface FixturesModule {
  fixturesDir(): string;
}

/** The repository root: the nearest ancestor whose package.json is envpack's (works from bench/ and dist/bench/). */
export function repoRoot(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const json = JSON.parse(readFileSync(manifest, "utf8")) as {
        name?: string;
      };
      if (json.name === "envpack") return dir;
    }
    if (dirname(dir) === dir)
      throw new Error("bench: cannot find envpack's repository root");
  }
}

async function load<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(join(repoRoot(), path)).href)) as T;
}

/** Installs (if its lockfile changed) one fixture app and returns its directory. */
export async function prepareApp(name: string, log: Log): Promise<string> {
  const { prepareAppFixtures } = await load<AppsModule>(
    "scripts/fixtures/apps.mjs",
  );
  const apps = await prepareAppFixtures({
    repo: repoRoot(),
    log,
    only: [name],
  });
  const dir = apps[name];
  if (dir === undefined)
    throw new Error(`fixtures/apps/${name} has no package-lock.json`);
  return dir;
}

/** Builds (once per builder version) the Conda fixture of one profile. */
export async function prepareConda(
  profile: "small" | "large",
  log: Log,
): Promise<CondaFixture> {
  const { fixturesDir } = await load<FixturesModule>("scripts/fixtures.mjs");
  const { prepareCondaFixture } = await load<CondaModule>(
    "scripts/fixtures/conda.mjs",
  );
  return prepareCondaFixture({ dir: fixturesDir(), profile, log });
}

/** A one-file Python app importing numpy (the large Conda fixture's app), made in `work`. */
export async function writeNumpyApp(work: string): Promise<string> {
  const app = join(work, "conda-app");
  await mkdir(app, { recursive: true });
  await writeFile(
    join(app, "app.py"),
    "import numpy\n\nprint(numpy.__version__)\n",
  );
  return app;
}
