// `envpack scan` through the built binary: output contract, files, exit codes and messages.

import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../src/core/index.js";
import { envpack } from "../helpers/cli.js";
import { materialiseCase, readCase } from "../helpers/scan-case.js";
import { tempDir } from "../helpers/temp-dir.js";

const cases = join(import.meta.dirname, "..", "..", "fixtures", "scan");

async function caseCopy(name: string): Promise<string> {
  const dir = join(await tempDir("envpack-cli-"), name);
  await materialiseCase(
    join(cases, name),
    dir,
    await readCase(join(cases, name)),
  );
  return dir;
}

describe("envpack scan", () => {
  it("--json prints one document whose packages and unresolved keys are the stable contract", async () => {
    const dir = await caseCopy("js-require-forms");
    const run = await envpack(
      ["scan", "--json", "src/main.cjs", "src/esm.mjs"],
      { cwd: dir },
    );
    expect(run.exitCode).toBe(0);
    const doc = JSON.parse(run.stdout) as {
      ok: boolean;
      packages: Array<{ name: string; version: string }>;
      unresolved: Array<{ specifier: string; file: string; line: number }>;
    };
    expect(doc.ok).toBe(true);
    expect(doc.packages.map((p) => `${p.name}@${p.version}`).sort()).toEqual([
      "cjs-only@3.0.0",
      "pkg-r@0.1.0",
    ]);
    expect(doc.unresolved).toContainEqual(
      expect.objectContaining({
        specifier: "not-installed-pkg",
        file: "src/esm.mjs",
        line: 5,
      }),
    );
    expect(run.stderr).toMatch(
      /^scan: \d+ files parsed, 2 packages, 3 unresolved/m,
    );
  });

  it("-o writes a manifest that validates, and prints a human summary with file:line findings", async () => {
    const dir = await caseCopy("js-require-forms");
    const run = await envpack(
      ["scan", "src/main.cjs", "-o", "out/manifest.json"],
      { cwd: dir },
    );
    expect(run.exitCode).toBe(0);
    const manifest = parseManifest(
      JSON.parse(await readFile(join(dir, "out", "manifest.json"), "utf8")),
      "manifest.json",
    );
    expect(manifest.entries).toEqual(["src/main.cjs"]);
    expect(run.stdout).toContain(
      "unresolved: src/main.cjs:6 'name' dynamic-expression",
    );
    expect(await readdir(join(dir, "out"))).toEqual(["manifest.json"]);
  });

  it("--strict exits 2 with ENVPACK_INPUT_UNRESOLVED listing the findings; optional ones alone pass", async () => {
    const dir = await caseCopy("js-require-forms");
    const strict = await envpack(
      ["scan", "--strict", "--json", "src/main.cjs"],
      { cwd: dir },
    );
    expect(strict.exitCode).toBe(2);
    const doc = JSON.parse(strict.stdout) as {
      ok: boolean;
      error: {
        code: string;
        details: { unresolved: Array<{ specifier: string }> };
      };
    };
    expect(doc.ok).toBe(false);
    expect(doc.error.code).toBe("ENVPACK_INPUT_UNRESOLVED");
    expect(doc.error.details.unresolved.map((u) => u.specifier)).toEqual([
      "name",
    ]);

    await writeFile(
      join(dir, "src", "only-optional.cjs"),
      'try { require("nope-missing"); } catch {}\n',
    );
    const optional = await envpack(
      ["scan", "--strict", "src/only-optional.cjs"],
      { cwd: dir },
    );
    expect(optional.exitCode).toBe(0);
  });

  it("a syntax error is listed with file:line:column and the scan still exits 0", async () => {
    const dir = await caseCopy("js-hostile");
    const run = await envpack(["scan", "src/a.ts"], { cwd: dir });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/unreadable: broken\.ts:3:8 syntax-error/);
    expect(run.stdout).toMatch(/unreadable: blob\.js binary/);
  });

  it("a missing entry exits 2 with a message, a hint and a code, and no stack trace", async () => {
    const dir = await tempDir();
    const run = await envpack(["scan", "missing.ts"], { cwd: dir });
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("envpack: entry not found:");
    expect(run.stderr).toContain("hint: ");
    expect(run.stderr).toContain("code: ENVPACK_INPUT_ENTRY_NOT_FOUND");
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("rejects bad usage with exit 2: unknown flag, directory entry, mixed languages, Python without an env", async () => {
    const dir = await caseCopy("js-basic");
    await writeFile(join(dir, "tool.py"), "import os\n");
    const results = await Promise.all([
      envpack(["scan", "--no-such-flag", "src/main.ts"], { cwd: dir }),
      envpack(["scan", "--json", "src"], { cwd: dir }),
      envpack(["scan", "--json", "src/main.ts", "tool.py"], { cwd: dir }),
      envpack(["scan", "--json", "tool.py"], {
        cwd: dir,
        env: { CONDA_PREFIX: "" },
      }),
    ]);
    expect(results.map((r) => r.exitCode)).toEqual([2, 2, 2, 2]);
    const codes = results
      .slice(1)
      .map(
        (r) => (JSON.parse(r.stdout) as { error: { code: string } }).error.code,
      );
    expect(codes).toEqual([
      "ENVPACK_INPUT_ENTRY_UNSUPPORTED",
      "ENVPACK_USAGE_MIXED_ENTRIES",
      "ENVPACK_USAGE_BAD_ARGUMENT",
    ]);
  });

  it("cannot write the output: exit 2, ENVPACK_INPUT_OUTPUT_UNWRITABLE, nothing half-written", async () => {
    const dir = await caseCopy("js-basic");
    await writeFile(
      join(dir, "blocker"),
      "a file where a directory is needed\n",
    );
    const run = await envpack(
      ["scan", "--json", "src/main.ts", "-o", "blocker/manifest.json"],
      { cwd: dir },
    );
    expect(run.exitCode).toBe(2);
    expect(
      (JSON.parse(run.stdout) as { error: { code: string } }).error.code,
    ).toBe("ENVPACK_INPUT_OUTPUT_UNWRITABLE");
    expect((await readdir(dir)).filter((f) => f.includes("tmp"))).toEqual([]);
  });

  it("--help shows every option and an example", async () => {
    const run = await envpack(["scan", "--help"]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatchSnapshot();
  });
});
