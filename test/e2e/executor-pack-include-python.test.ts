// Executor pack: true with pythonApp(..., { include }): an app module and an installed package
// the task imports by names it gets at call time ship only when the app includes them, and two
// apps of one file with different includes get different bundles.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { isEnvpackError } from "../../src/index.js";
import { bundlesIn, packExecutor } from "../helpers/pack-cache.js";
import { tempDir } from "../helpers/temp-dir.js";

const TASKS = `"""Tasks that import their plugins by names known only at run time."""
import importlib


def load(names):
    modules = [importlib.import_module(name) for name in names]
    return [getattr(m, "TAG", None) or m.__version__ for m in modules]
`;

describe("Executor pack: true with include, Python", () => {
  it("ships the included package and app modules (the same file without the include fails to import them), each include its own bundle", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const app = await tempDir("envpack-exec-pyinclude-");
    await mkdir(join(app, "src", "plugins"), { recursive: true });
    await writeFile(
      join(app, "pyproject.toml"),
      '[project]\nname = "include-app"\nversion = "0.1.0"\n',
    );
    await writeFile(join(app, "src", "tasks.py"), TASKS);
    await writeFile(join(app, "src", "plugins", "__init__.py"), "");
    await writeFile(join(app, "src", "plugins", "shout.py"), 'TAG = "shout"\n');
    const file = join(app, "src", "tasks.py");
    const { executor, cacheDir } = await packExecutor();
    let failure: unknown;
    try {
      const included = executor.pythonApp<[string[]], string[]>(file, "load", {
        env: conda.prefix,
        include: ["six", "src/plugins/*.py"],
      });
      expect(await included(["plugins.shout", "six"])).toEqual([
        "shout",
        "1.17.0",
      ]);
      const bare = executor.pythonApp<[string[]], string[]>(file, "load", {
        env: conda.prefix,
        name: "bare",
      });
      failure = await bare(["plugins.shout"]).catch((e: unknown) => e);
    } finally {
      await executor.shutdown();
    }
    expect(isEnvpackError(failure) && failure.code).toBe("ENVPACK_TASK_FAILED");
    expect(String((failure as Error).message)).toMatch(/plugins/);
    // Each include its own bundle (its own app layer over shared ones).
    expect(await bundlesIn(cacheDir)).toHaveLength(2);
  });
});
