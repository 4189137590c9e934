// The CLI loads only what a command needs: `--help` and a cache-hit build load no parser, tar,
// zstd, HTTP client, process library, schema library or compiler; a scan loads its own language's
// parser and nothing of the packer (modules listed, nothing timed).

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { BIN, envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

/** The packages no start-up path may load. */
const HEAVY = [
  "@babel/parser",
  "@babel/types",
  "meriyah",
  "oxc-resolver",
  "web-tree-sitter",
  "tar",
  "zstd-napi",
  "node-fetch",
  "execa",
  "esbuild",
  "zod",
];

/**
 * Runs `envpack ARGS` with a module hook that records every module URL loaded (ES modules as they
 * load; CommonJS ones, which a `require` loads past the hook, from the require cache at exit,
 * leaving out package.json files read for a version); returns them and stdout.
 */
async function loadedModules(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ urls: string[]; stdout: string }> {
  const dir = await tempDir();
  const log = join(dir, "modules.txt");
  const hooks = join(dir, "hooks.mjs");
  await writeFile(
    hooks,
    `import { appendFileSync } from "node:fs";
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(log)}, url + "\\n");
  return next(url, context);
}
`,
  );
  const preload = join(dir, "preload.mjs");
  await writeFile(
    preload,
    `import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";
register(${JSON.stringify(pathToFileURL(hooks).href)});
const { cache } = createRequire(import.meta.url);
process.on("exit", () => {
  const urls = Object.keys(cache)
    .filter((path) => !path.endsWith(".json"))
    .map((path) => pathToFileURL(path).href);
  appendFileSync(${JSON.stringify(log)}, urls.map((url) => url + "\\n").join(""));
});
`,
  );
  const run = await execa(
    process.execPath,
    ["--import", pathToFileURL(preload).href, BIN, ...args],
    {
      cwd: options.cwd,
      env: { CI: "true", ...options.env },
      reject: false,
      stdin: "ignore",
    },
  );
  expect(run.exitCode, run.stderr).toBe(0);
  return {
    urls: (await readFile(log, "utf8")).trim().split("\n"),
    stdout: String(run.stdout),
  };
}

/** The heavy packages among loaded module URLs. */
function heavyIn(urls: string[]): string[] {
  return HEAVY.filter((name) =>
    urls.some((url) => url.includes(`/node_modules/${name}/`)),
  );
}

describe("start-up", () => {
  it("`envpack --help` loads none of the heavy modules", async () => {
    const { urls } = await loadedModules(["--help"]);
    // The hook saw the CLI itself: the listing is real.
    expect(urls.some((url) => url.endsWith("/cli/main.js"))).toBe(true);
    expect(urls.some((url) => url.includes("/node_modules/commander/"))).toBe(
      true,
    );
    expect(heavyIn(urls)).toEqual([]);
  });

  it("a cache-hit `envpack build` loads none of the heavy modules", async () => {
    const app = await appCopy("hello");
    const env = { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") };
    const first = await envpack(["build", "--json", "src/main.ts"], {
      cwd: app,
      env,
    });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ source: "built" });

    const hit = await loadedModules(["build", "--json", "src/main.ts"], {
      cwd: app,
      env,
    });
    expect(JSON.parse(hit.stdout)).toMatchObject({ source: "cache" });
    const { urls } = hit;
    expect(urls.some((url) => url.endsWith("/api/build.js"))).toBe(true);
    expect(heavyIn(urls)).toEqual([]);
  });

  it("`envpack scan` of a Node app loads its parsers, none of the packer, registry or compiler", async () => {
    const app = await appCopy("hello");
    const { urls, stdout } = await loadedModules(
      ["scan", "--json", "src/main.ts"],
      { cwd: app },
    );
    expect(JSON.parse(stdout)).toMatchObject({ kind: "node" });
    // The listing sees the parsers this scan needs, CommonJS ones included.
    expect(heavyIn(urls)).toEqual(
      expect.arrayContaining(["@babel/parser", "oxc-resolver"]),
    );
    const packerAndBeyond = [
      "web-tree-sitter",
      "tar",
      "zstd-napi",
      "node-fetch",
      "execa",
      "esbuild",
      "zod",
    ];
    expect(heavyIn(urls).filter((n) => packerAndBeyond.includes(n))).toEqual(
      [],
    );
  });

  it("`envpack scan` of a Python app loads no JavaScript parser, resolver or compiler", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const app = await tempDir("envpack-pyapp-");
    await writeFile(join(app, "app.py"), "import json\nimport six\n");
    const { urls, stdout } = await loadedModules(
      ["scan", "--json", "app.py", "--env", conda.prefix],
      { cwd: app },
    );
    expect(JSON.parse(stdout)).toMatchObject({ kind: "conda" });
    expect(heavyIn(urls)).toContain("web-tree-sitter");
    const forJavaScript = [
      "@babel/parser",
      "@babel/types",
      "meriyah",
      "oxc-resolver",
      "esbuild",
    ];
    expect(heavyIn(urls).filter((n) => forJavaScript.includes(n))).toEqual([]);
  });
});
