// pack: true end to end with the real local backend: the app's environment is scanned, built,
// unpacked once per worker and used — the bundle's node and packages, not the host's.

import { readdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { Executor } from "../../src/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Info {
  execPath: string;
  dependency: string;
  pid: number;
}

describe("Executor with pack: true", () => {
  it("runs a module app inside its bundle, even once its package is gone from the host", async () => {
    const app = await appCopy("exec-tasks");
    const workDir = await tempDir();
    const ex = new Executor({
      workers: [
        { id: "a", cores: 2 },
        { id: "b", cores: 2 },
      ],
      pack: true,
      cacheDir: await tempDir(),
      workDir,
    });
    try {
      const tasks = join(app, "src", "tasks.ts");
      const info = ex.app<[], Info>(tasks, "runtimeInfo", {
        resources: { cores: 1 },
      });
      const first = await Promise.all(Array.from({ length: 8 }, () => info()));
      for (const r of first) {
        expect(r.execPath.startsWith(workDir)).toBe(true);
        expect(r.execPath).not.toBe(process.execPath);
        expect(r.dependency.startsWith(workDir)).toBe(true);
        expect(r.dependency).toMatch(/app\/node_modules\/ms\/index\.js$/);
      }
      // Unpacked once per worker, whatever the number of concurrent tasks.
      for (const worker of ["a", "b"])
        expect(
          (await readdir(join(workDir, worker, "envs"))).filter(
            (n) => !n.endsWith(".lock"),
          ),
        ).toHaveLength(1);

      // The host can no longer reach `ms`; the bundle still has it, also in new runtimes.
      await rename(join(app, "node_modules"), join(app, "node_modules.gone"));
      const usesDep = ex.app<[string], number>(tasks, "usesDep", {
        resources: { cores: 1 },
      });
      expect(
        await Promise.all(Array.from({ length: 6 }, () => usesDep("2m"))),
      ).toEqual(Array(6).fill(120_000));
    } finally {
      await ex.shutdown();
    }
  });

  it("runs a Python app with its Conda environment's interpreter and packages", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const dir = await tempDir();
    const file = join(dir, "probe.py");
    await writeFile(
      file,
      "import sys\nimport six, jsonpointer\n\ndef where(x):\n    return {'x': x, 'prefix': sys.prefix, 'six': six.__file__}\n",
    );
    const workDir = await tempDir();
    const ex = new Executor({
      workers: [{ cores: 1 }],
      pack: true,
      cacheDir: await tempDir(),
      workDir,
    });
    try {
      const where = ex.pythonApp<
        [number],
        { x: number; prefix: string; six: string }
      >(file, "where", {
        env: conda.prefix,
      });
      const result = await where(7);
      expect(result.x).toBe(7);
      expect(result.prefix.startsWith(workDir)).toBe(true);
      expect(result.six.startsWith(result.prefix)).toBe(true);
    } finally {
      await ex.shutdown();
    }
  });
});
