#!/usr/bin/env node
// Builds the shared test fixtures (installed fixture apps, the Conda environment) once, idempotently.
// Run directly (`npm run fixtures`) or from the test suite's global setup.

import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { prepareAppFixtures } from "./fixtures/apps.mjs";
import { prepareCondaFixture } from "./fixtures/conda.mjs";
import { prepareNodeRuntimes } from "./fixtures/node-runtimes.mjs";

const repo = fileURLToPath(new URL("..", import.meta.url));

/** Where generated fixtures live: outside the repository, reused across runs while their inputs are unchanged. */
export function fixturesDir() {
  return process.env.ENVPACK_FIXTURES_DIR || join(tmpdir(), "envpack-fixtures");
}

/**
 * Prepares every fixture and returns where they are.
 * @param {{ log?: (line: string) => void }} [options]
 */
export async function prepareFixtures(options = {}) {
  const log = options.log ?? (() => {});
  const dir = fixturesDir();
  const [apps, runnable, conda, nodeRuntimes] = await Promise.all([
    prepareAppFixtures({ repo, log }),
    prepareAppFixtures({ repo, log, under: "fixtures/runnable", nativeCache: join(dir, "native") }),
    prepareCondaFixture({ dir, profile: "small", log }),
    prepareNodeRuntimes({ log }),
  ]);
  return { repo, apps, runnable, conda, nodeRuntimes };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await prepareFixtures({ log: (line) => console.error(line) });
  console.log(JSON.stringify(result, null, 2));
}
