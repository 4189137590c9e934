// Python --trace beyond files: directories the app lists ship within the asset budget, and the
// trace hook leaves the environment's own sitecustomize working and reports no error of its own.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { scan } from "../../src/api/scan-app.js";
import type { EnvpackEvent } from "../../src/core/index.js";
import { resolveByTrace } from "../../src/scan/traced-sites.js";
import { PYTHON_TRACE_HOOK } from "../../src/scan/trace/python-trace-hook.js";
import { tempDir } from "../helpers/temp-dir.js";

function prefix(): string {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda.prefix;
}

/** An app that lists `data/` (holding `files` files) and prints how many it found. */
async function listingApp(files: number): Promise<string> {
  const dir = join(await tempDir("envpack-pylist-"), "app");
  await mkdir(join(dir, "data", "__pycache__"), { recursive: true });
  for (let i = 0; i < files; i++)
    await writeFile(join(dir, "data", `d${i}.txt`), `${i}\n`);
  await writeFile(join(dir, "data", "__pycache__", "stale.pyc"), "x");
  await writeFile(
    join(dir, "main.py"),
    'import glob, os\nhere = os.path.dirname(os.path.abspath(__file__))\nprint(len(glob.glob(os.path.join(here, "data", "*.txt"))))\n',
  );
  return dir;
}

describe("python --trace listings", () => {
  it("a directory listed through glob ships its files (not __pycache__)", async () => {
    const dir = await listingApp(3);
    const manifest = await scan({
      entries: ["main.py"],
      cwd: dir,
      env: prefix(),
      trace: [],
    });
    expect(manifest.files.map((f) => `${f.path} ${f.reason ?? "-"}`)).toEqual([
      "data/d0.txt traced",
      "data/d1.txt traced",
      "data/d2.txt traced",
      "main.py -",
    ]);
  });

  it("over the file budget: left out, with ENVPACK_WARN_ASSET_BUDGET naming the directory", async () => {
    const dir = await listingApp(1001);
    const events: EnvpackEvent[] = [];
    const manifest = await scan({
      entries: ["main.py"],
      cwd: dir,
      env: prefix(),
      trace: [],
      onEvent: (e) => events.push(e),
    });
    expect(manifest.files.map((f) => f.path)).toEqual(["main.py"]);
    const warnings = events.filter((e) => e.type === "warn");
    expect(warnings).toMatchObject([
      {
        code: "ENVPACK_WARN_ASSET_BUDGET",
        data: { dir: join(dir, "data"), files: 1001 },
      },
    ]);
  });

  it("__import__ of a computed name: the trace settles the finding with the module it imported there", async () => {
    const dir = join(await tempDir("envpack-pyimport-"), "app");
    await mkdir(dir);
    await writeFile(
      join(dir, "main.py"),
      'name = "js" + "on"\nmodule = __import__(name)\nprint(module.dumps([1]))\n',
    );
    const options = { entries: ["main.py"], cwd: dir, env: prefix() };
    const plain = await scan(options);
    const traced = await scan({ ...options, trace: [] });
    expect(plain.unresolved).toMatchObject([
      { line: 2, reason: "dynamic-expression" },
    ]);
    expect(plain.unresolved[0]?.resolvedByTrace).toBeUndefined();
    expect(traced.unresolved).toMatchObject([
      { line: 2, reason: "dynamic-expression", resolvedByTrace: ["json"] },
    ]);
  });

  it("the hook runs the environment's own sitecustomize and prints no error of its own", async () => {
    const dir = await tempDir("envpack-pyhook-");
    await mkdir(join(dir, "boot"));
    await mkdir(join(dir, "own"));
    await writeFile(join(dir, "boot", "sitecustomize.py"), PYTHON_TRACE_HOOK);
    await writeFile(
      join(dir, "own", "sitecustomize.py"),
      "import builtins\nbuiltins.OWN_SITE = 'ran'\n",
    );
    const ran = await execa(
      join(prefix(), "bin", "python"),
      [
        "-c",
        "import sys; print(OWN_SITE, sys.modules['sitecustomize'].__file__)",
      ],
      {
        env: {
          ENVPACK_TRACE_OUT: join(dir, "trace.log"),
          PYTHONPATH: `${join(dir, "boot")}:${join(dir, "own")}`,
          PYTHONDONTWRITEBYTECODE: "1",
        },
      },
    );
    expect(ran.stderr).toBe("");
    expect(ran.stdout).toBe(`ran ${join(dir, "own", "sitecustomize.py")}`);
  });
});

describe("findings a trace settles", () => {
  it("marks only dynamic-expression findings at a traced calling line, with the modules sorted", () => {
    const findings = [
      { file: "/p/a.py", line: 3, reason: "dynamic-expression" as const },
      { file: "/p/a.py", line: 4, reason: "dynamic-expression" as const },
      { file: "/p/a.py", line: 5, reason: "not-installed" as const },
    ];
    expect(
      resolveByTrace(findings, [
        { module: "z", file: "/p/a.py", line: 3 },
        { module: "b.c", file: "/p/a.py", line: 3 },
        { module: "z", file: "/p/a.py", line: 3 },
        { module: "y", file: "/p/a.py", line: 5 },
        { module: "x", file: "/p/b.py", line: 4 },
      ]),
    ).toEqual([
      { ...findings[0], resolvedByTrace: ["b.c", "z"] },
      findings[1],
      findings[2],
    ]);
  });
});
