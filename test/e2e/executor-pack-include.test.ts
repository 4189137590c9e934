// Executor pack: true with app(..., { include }): a data file the task reads through a path
// computed at run time ships only when the app includes it, and two apps of one module with
// different includes get different bundles.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isEnvpackError } from "../../src/index.js";
import { bundlesIn, packExecutor } from "../helpers/pack-cache.js";
import { tempDir } from "../helpers/temp-dir.js";

const TASKS = `import { readFileSync } from "node:fs";

/** Reads a file next to this module by a name known only at run time. */
export function readBeside(name) {
  return readFileSync(new URL(name, import.meta.url), "utf8").trim();
}
`;

describe("Executor pack: true with include", () => {
  it("ships the included app files (the same module without the include fails to find them), each include its own bundle", async () => {
    const app = await tempDir("envpack-exec-include-");
    await mkdir(join(app, "src", "data"), { recursive: true });
    await writeFile(
      join(app, "package.json"),
      JSON.stringify({ name: "include-app", private: true, type: "module" }),
    );
    await writeFile(join(app, "src", "tasks.js"), TASKS);
    await writeFile(
      join(app, "src", "data", "greeting.txt"),
      "hello, included\n",
    );
    const entry = join(app, "src", "tasks.js");
    const { executor, cacheDir } = await packExecutor();
    let failure: unknown;
    try {
      const included = executor.app<[string], string>(entry, "readBeside", {
        include: ["src/data/*.txt"],
      });
      expect(await included("data/greeting.txt")).toBe("hello, included");
      const bare = executor.app<[string], string>(entry, "readBeside", {
        name: "bare",
      });
      failure = await bare("data/greeting.txt").catch((e: unknown) => e);
    } finally {
      await executor.shutdown();
    }
    expect(isEnvpackError(failure) && failure.code).toBe("ENVPACK_TASK_FAILED");
    // Each include its own bundle (its own app layer over shared ones).
    expect(await bundlesIn(cacheDir)).toHaveLength(2);
  });
});
