// Python bundles that run: each fixtures/runnable/py-* app is copied, built against the Conda
// fixture, unpacked by runtime/envpack-run on a PATH with only the worker tools (no python, no
// node), run from an empty directory, and must print what it prints from its project.

import { cp, lstat, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import type { Manifest } from "../../src/core/index.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";
import { buildAndRunOnWorker } from "../helpers/run-on-worker.js";

const REPO = join(import.meta.dirname, "..", "..");

interface RunnableCase {
  entries: string[];
  stdout: string;
}

function prefix(): string {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda.prefix;
}

/** A copy of the case (running it in the repository would be a write there) and its settings. */
async function copyCase(
  name: string,
): Promise<{ dir: string; settings: RunnableCase }> {
  const source = join(REPO, "fixtures", "runnable", name);
  const dir = join(await tempDir(`envpack-${name}-`), name);
  await cp(source, dir, {
    recursive: true,
    filter: (src) => !src.endsWith("case.json"),
  });
  const settings = JSON.parse(
    await readFile(join(source, "case.json"), "utf8"),
  ) as RunnableCase;
  return { dir, settings };
}

async function runInProject(dir: string, entry: string): Promise<string> {
  const ran = await execa(join(prefix(), "bin", "python"), [entry], {
    cwd: dir,
    env: { PYTHONDONTWRITEBYTECODE: "1" },
  });
  return String(ran.stdout);
}

async function scanJson(dir: string, args: string[], cache: string) {
  const run = await envpack(["scan", "--json", "--env", prefix(), ...args], {
    cwd: dir,
    env: { ENVPACK_CACHE_DIR: cache },
  });
  expect(run.exitCode, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Manifest;
}

/** Builds against the Conda fixture and runs the bundle on a worker: its stdout. */
async function buildAndRunPython(dir: string, args: string[]): Promise<string> {
  return (await buildAndRunOnWorker(dir, ["--env", prefix(), ...args])).stdout;
}

describe("Python bundles that run", () => {
  it("py-config-plugin: a module named by a settings value and declared in pyproject.toml ships; its bundle prints what the project prints", async () => {
    const { dir, settings } = await copyCase("py-config-plugin");
    const cache = join(await tempDir(), "cache");
    const full = await scanJson(dir, settings.entries, cache);
    const strict = await scanJson(
      dir,
      [...settings.entries, "--only-imported"],
      cache,
    );
    expect(full.packages.find((p) => p.name === "jsonpointer")?.reason).toBe(
      "declared",
    );
    expect(strict.packages.map((p) => p.name)).not.toContain("jsonpointer");

    const expected = await runInProject(dir, settings.entries[0] as string);
    expect(expected).toContain(settings.stdout);
    expect(await buildAndRunPython(dir, settings.entries)).toBe(expected);
  });

  it("py-trace-plugin --trace: finds the app module and the package a JSON config names (neither analysis nor declarations do), reports both directions, writes nothing into the project or the cache; the traced bundle runs", async () => {
    const { dir, settings } = await copyCase("py-trace-plugin");
    const cache = join(await tempDir(), "cache");
    const before = await listing(dir);
    const plain = await scanJson(dir, settings.entries, cache);
    expect(plain.packages.map((p) => p.name)).not.toContain("six");
    // The config file is named by a self-relative path: the analysis finds it; what it names, not.
    expect(plain.files.map((f) => `${f.path} ${f.reason ?? "-"}`)).toEqual([
      "main.py -",
      "plugins.json asset",
    ]);
    expect(plain.trace).toBeUndefined();

    const traced = await scanJson(
      dir,
      [
        ...settings.entries,
        "--trace",
        "--",
        join(prefix(), "bin", "python"),
        "src/main.py",
      ],
      cache,
    );
    expect(traced.packages.find((p) => p.name === "six")?.reason).toBe(
      "traced",
    );
    expect(
      traced.files.filter((f) => f.reason === "traced").map((f) => f.path),
    ).toEqual(["plugins/__init__.py", "plugins/shout.py"]);
    expect(traced.trace).toEqual({ notLoaded: { files: [], packages: [] } });
    // The computed import the analysis could not resolve is settled by what the run imported there.
    expect(
      traced.unresolved.map((u) => [u.file, u.line, u.resolvedByTrace]),
    ).toEqual([["main.py", 8, ["plugins.shout", "six"]]]);
    expect(plain.unresolved.map((u) => u.resolvedByTrace)).toEqual([undefined]);
    expect(await listing(dir)).toEqual(before);
    expect(await listing(cache)).toEqual([]);

    const expected = await runInProject(dir, settings.entries[0] as string);
    expect(expected).toContain(settings.stdout);
    expect(await buildAndRunPython(dir, [...settings.entries, "--trace"])).toBe(
      expected,
    );
    expect(await listing(dir)).toEqual(before);
  });

  it("py-listed-dirs --trace: every file of a directory the app lists ships (not only those it opens), the computed import is resolved by the trace, directories only the import system listed do not ship; the traced bundle runs", async () => {
    const { dir, settings } = await copyCase("py-listed-dirs");
    const cache = join(await tempDir(), "cache");
    const traced = await scanJson(dir, [...settings.entries, "--trace"], cache);
    expect(traced.files.map((f) => `${f.path} ${f.reason ?? "-"}`)).toEqual([
      "dirs.json asset",
      "formats/__init__.py traced",
      "formats/brackets.py traced",
      "formats/plain.py traced",
      "main.py -",
      "templates/bye.txt traced",
      "templates/hello.txt traced",
    ]);
    expect(traced.unresolved).toMatchObject([
      {
        file: "main.py",
        line: 15,
        reason: "dynamic-expression",
        resolvedByTrace: ["formats.brackets"],
      },
    ]);

    const expected = await runInProject(dir, settings.entries[0] as string);
    expect(expected).toBe(settings.stdout);
    expect(await buildAndRunPython(dir, [...settings.entries, "--trace"])).toBe(
      expected,
    );
  });

  it("--strict passes a computed import the trace resolved, and fails it without the trace", async () => {
    const { dir, settings } = await copyCase("py-trace-plugin");
    const env = { ENVPACK_CACHE_DIR: join(dir, "..", "cache") };
    const args = [
      "scan",
      "--json",
      "--strict",
      "--env",
      prefix(),
      ...settings.entries,
    ];
    const plain = await envpack(args, { cwd: dir, env });
    expect(plain.exitCode).toBe(2);
    expect(
      (JSON.parse(plain.stdout) as { error: { code: string } }).error.code,
    ).toBe("ENVPACK_INPUT_UNRESOLVED");
    const human = args.filter((a) => a !== "--json");
    const traced = await envpack([...human, "--trace"], { cwd: dir, env });
    expect(traced.exitCode, traced.stderr).toBe(0);
    // The summary counts a settled finding apart from the open ones.
    expect(traced.stdout).toMatch(
      /^conda app: \d+ files, \d+ packages, 0 unresolved \(1 more resolved by the trace\)$/m,
    );
  });

  it("the human summary compares both directions: traced: what the run loaded that the analysis missed, not loaded: what it found that the run never reached", async () => {
    const { dir } = await copyCase("py-config-plugin");
    const run = await envpack(
      [
        "scan",
        "src/main.py",
        "--env",
        prefix(),
        "--trace",
        "--",
        join(prefix(), "bin", "python"),
        "src/settings.py",
      ],
      { cwd: dir, env: { ENVPACK_CACHE_DIR: join(dir, "..", "cache") } },
    );
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /^declared: jsonpointer \(in pyproject\.toml, reached by no import\) ships/m,
    );
    expect(run.stdout).toMatch(
      /^not loaded: src\/main\.py, jsonpointer@3\.1\.1 \(found by the analysis/m,
    );
  });

  it("a traced Python that skips PYTHONPATH (-I) is ENVPACK_INPUT_TRACE_FAILED, not an empty trace", async () => {
    const { dir, settings } = await copyCase("py-trace-plugin");
    const run = await envpack(
      [
        "scan",
        "--json",
        "--env",
        prefix(),
        ...settings.entries,
        "--trace",
        "--",
        join(prefix(), "bin", "python"),
        "-I",
        "src/main.py",
      ],
      { cwd: dir, env: { ENVPACK_CACHE_DIR: join(dir, "..", "cache") } },
    );
    expect(run.exitCode).toBe(2);
    const out = JSON.parse(run.stdout) as { error: { code: string } };
    expect(out.error.code).toBe("ENVPACK_INPUT_TRACE_FAILED");
  });
});

/** Every path under `dir` with its size and mtime (none when it does not exist). */
async function listing(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const lines = await Promise.all(
    entries.map(async (e) => {
      const path = join(e.parentPath, e.name);
      const info = await lstat(path);
      return `${path} ${info.size} ${info.mtimeMs}`;
    }),
  );
  return lines.sort();
}
