// Executor pack: true with app(..., { include }): a data file the task reads through a path
// computed at run time ships only when the app includes it, and two apps of one module with
// different includes get different bundles.

import { mkdir, open, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { Executor, isEnvpackError } from "../../src/index.js";
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
    const cacheDir = join(await tempDir("envpack-exec-cache-"), "cache");
    vi.stubEnv("ENVPACK_CACHE_DIR", cacheDir);
    const entry = join(app, "src", "tasks.js");
    const executor = new Executor({
      pack: true,
      cacheDir,
      workDir: await tempDir("envpack-exec-work-"),
      workers: [{ cores: 1 }],
    });
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
    // Two bundles: two indexes (JSON) over layers they share but for their app layers.
    const blobs = join(cacheDir, "blobs", "sha256");
    const indexes: string[] = [];
    for (const name of await readdir(blobs)) {
      const file = await open(join(blobs, name));
      const { buffer } = await file.read(Buffer.alloc(1), 0, 1, 0);
      await file.close();
      if (buffer.toString() === "{") indexes.push(name);
    }
    expect(indexes).toHaveLength(2);
  });
});
