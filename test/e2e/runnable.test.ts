// Bundles that run: each fixtures/runnable/<case>/ app (installed from its lockfile) is built,
// unpacked by runtime/envpack-run on a PATH with only the worker tools (no node, no python), run
// from an empty directory, and must print what it prints from its project.

import { lstat, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { envpack } from "../helpers/cli.js";
import { buildAndRunOnWorker } from "../helpers/run-on-worker.js";

interface RunnableCase {
  description: string;
  entries: string[];
  /** Built with `--trace`: what the app loads at run time is found by running it. */
  trace?: boolean;
  /** A line its output must hold (from the project and from the bundle alike). */
  stdout: string;
}

const staticCases = [
  "pino-transport",
  "express-views",
  "knex-sqlite",
  "dotenv-file",
];

async function readCase(dir: string): Promise<RunnableCase> {
  return JSON.parse(
    await readFile(join(dir, "case.json"), "utf8"),
  ) as RunnableCase;
}

async function runInProject(dir: string, entry: string): Promise<string> {
  const ran = await execa(process.execPath, [entry], { cwd: dir });
  return String(ran.stdout);
}

describe("bundles that run", () => {
  it.each(staticCases)(
    "%s: prints from its bundle on a worker what it prints from its project",
    async (name) => {
      const dir = inject("fixtures").runnable[name];
      if (dir === undefined)
        throw new Error(`fixture ${name} was not installed`);
      const settings = await readCase(dir);
      const entry = settings.entries[0] as string;
      const expected = await runInProject(dir, entry);
      expect(expected).toContain(settings.stdout);
      const { stdout } = await buildAndRunOnWorker(dir, settings.entries);
      expect(stdout).toBe(expected);
    },
  );

  it("without declared dependencies (--only-imported) the plugins named by strings are missing; the views directory is there either way", async () => {
    const plugins: Record<string, string> = {
      "pino-transport": "pino-pretty",
      "express-views": "ejs",
    };
    for (const [name, plugin] of Object.entries(plugins)) {
      const dir = inject("fixtures").runnable[name] as string;
      const names = async (extra: string[]) => {
        const run = await envpack(["scan", "--json", "src/main.js", ...extra], {
          cwd: dir,
        });
        expect(run.exitCode).toBe(0);
        return JSON.parse(run.stdout) as {
          packages: Array<{ name: string; reason: string }>;
          files: Array<{ path: string; reason?: string }>;
        };
      };
      const full = await names([]);
      const strict = await names(["--only-imported"]);
      expect(full.packages.find((p) => p.name === plugin)?.reason).toBe(
        "declared",
      );
      expect(strict.packages.map((p) => p.name)).not.toContain(plugin);
      if (name === "express-views")
        expect(
          strict.files.filter((f) => f.reason === "asset").map((f) => f.path),
        ).toEqual(["src/views/hello.ejs", "src/views/partials/footer.ejs"]);
    }
  });

  it("--trace: finds a plugin that neither the analysis nor the declared dependencies name, and the traced bundle runs; nothing is written into the project", async () => {
    const dir = inject("fixtures").runnable["trace-plugin"] as string;
    const settings = await readCase(dir);
    const before = await listing(dir);
    const scanned = await envpack(["scan", "--json", "src/main.js"], {
      cwd: dir,
    });
    expect(scanned.exitCode).toBe(0);
    const plain = JSON.parse(scanned.stdout) as {
      packages: Array<{ name: string }>;
      files: Array<{ path: string }>;
    };
    expect(plain.packages.map((p) => p.name)).not.toContain("ms");
    expect(plain.files.map((f) => f.path)).not.toContain(
      "src/plugins/shout.js",
    );

    const traced = await envpack(
      ["scan", "--json", "src/main.js", "--trace", "--", "node", "src/main.js"],
      { cwd: dir },
    );
    expect(traced.exitCode, traced.stderr).toBe(0);
    const manifest = JSON.parse(traced.stdout) as {
      packages: Array<{ name: string; reason: string }>;
      files: Array<{ path: string; reason?: string }>;
      trace?: { notLoaded: { files: string[]; packages: string[] } };
    };
    expect(manifest.packages.find((p) => p.name === "ms")?.reason).toBe(
      "traced",
    );
    expect(
      manifest.files.find((f) => f.path === "src/plugins/shout.js")?.reason,
    ).toBe("traced");
    // The other direction: the run read the config through an ES import of node:fs too.
    expect(manifest.trace).toEqual({ notLoaded: { files: [], packages: [] } });
    const idle = await envpack(
      ["scan", "src/main.js", "--trace", "--", "node", "-e", ""],
      { cwd: dir },
    );
    expect(idle.exitCode, idle.stderr).toBe(0);
    expect(idle.stdout).toMatch(
      /^not loaded: src\/main\.js, src\/plugins\.json \(found by the analysis/m,
    );

    const expected = await runInProject(dir, "src/main.js");
    expect(expected).toContain(settings.stdout);
    const { stdout } = await buildAndRunOnWorker(dir, [
      "src/main.js",
      "--trace",
    ]);
    expect(stdout).toBe(expected);
    expect(await listing(dir)).toEqual(before);
  });
});

/** Every path under `dir` with its size and mtime: a write anywhere changes it. */
async function listing(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return Promise.all(
    entries.map(async (e) => {
      const path = join(e.parentPath, e.name);
      const info = await lstat(path);
      return `${path} ${info.size} ${info.mtimeMs}`;
    }),
  ).then((lines) => lines.sort());
}
