// Builds the shared fixtures once per test run and provides their locations to every test. Gives
// the run its own default cache (XDG_CACHE_HOME, inherited by every test process and every CLI it
// spawns), so that a test that does not name a cache never writes into the user's ~/.cache.

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { removeTree } from "../../packer/layers/read-only-tree.js";
import { prepareFixtures } from "../../scripts/fixtures.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    fixtures: Awaited<ReturnType<typeof prepareFixtures>>;
  }
}

export default async function setup(
  project: TestProject,
): Promise<() => Promise<void>> {
  const cacheHome = await mkdtemp(join(tmpdir(), "envpack-test-cache-"));
  process.env.XDG_CACHE_HOME = cacheHome;
  project.provide(
    "fixtures",
    await prepareFixtures({ log: (line: string) => console.error(line) }),
  );
  // Unpacked layers are read-only, directories included: removeTree gives them their write bit.
  return () => removeTree(cacheHome);
}
