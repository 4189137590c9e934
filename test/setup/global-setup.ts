// Builds the shared fixtures once per test run and provides their locations to every test.

import type { TestProject } from "vitest/node";
import { prepareFixtures } from "../../scripts/fixtures.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    fixtures: Awaited<ReturnType<typeof prepareFixtures>>;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  project.provide(
    "fixtures",
    await prepareFixtures({ log: (line: string) => console.error(line) }),
  );
}
