// The README's Executor example is examples/executor.mjs, word for word, and it runs.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";

const repo = join(import.meta.dirname, "..", "..");

describe("examples/executor.mjs", () => {
  it("is the README's example and runs: packed apps, a command, autolabel summaries", async () => {
    const example = await readFile(
      join(repo, "examples", "executor.mjs"),
      "utf8",
    );
    const readme = await readFile(join(repo, "README.md"), "utf8");
    expect(readme).toContain(
      example.slice(example.indexOf("import { Executor }")),
    );

    const run = await execa(
      process.execPath,
      [join(repo, "examples", "executor.mjs")],
      {
        env: { ENVPACK_CACHE_DIR: await tempDir() },
        reject: false,
      },
    );
    expect(run.exitCode, run.stderr).toBe(0);
    const [results, summary] = run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as unknown);
    expect(results).toEqual([
      200,
      200,
      200,
      200,
      200,
      200,
      50,
      80,
      7_200_000,
      { exitCode: 0, stdout: expect.stringMatching(/^\d+\n$/) },
    ]);
    expect(summary).toEqual(
      expect.arrayContaining([
        expect.arrayContaining(["tasks.sleep", 6]),
        expect.arrayContaining(["tasks.alloc", 2]),
      ]),
    );
  });
});
