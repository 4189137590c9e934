// The CLI loads only what a command needs: `--help` and a cache-hit build load no parser, tar,
// zstd, HTTP client, process library, schema library or compiler; a scan loads its own language's
// parser and nothing of the packer (modules listed, nothing timed). The CLI is one esbuild bundle
// with chunks (scripts/bundle-cli.mjs): the chunks a command loads are mapped back to the source
// modules they hold through the build's metafile.

import { readFile, symlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { BIN, envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

/** The JavaScript parsers and resolver: only a Node scan may load them. */
const FOR_JAVASCRIPT = [
  "@babel/parser",
  "@babel/types",
  "meriyah",
  "oxc-parser",
  "oxc-resolver",
];

/** The packages no start-up path may load. */
const HEAVY = [
  ...FOR_JAVASCRIPT,
  "web-tree-sitter",
  "tar",
  "zstd-napi",
  "node-fetch",
  "execa",
  "esbuild",
  "zod",
];

/**
 * Runs `envpack ARGS` (or the script `options.file`) with a module hook that records every module
 * URL loaded (ES modules as they load; CommonJS ones, which a `require` loads past the hook, from
 * the require cache at exit, leaving out package.json files read for a version; Node's public
 * builtins as `node:NAME`); returns them and stdout.
 */
async function loadedModules(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; file?: string } = {},
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
  // Node's own modules, however loaded, as node:NAME.
  for (const entry of process.moduleLoadList)
    if (entry.startsWith("NativeModule ") && !entry.includes("internal/"))
      urls.push("node:" + entry.slice("NativeModule ".length));
  appendFileSync(${JSON.stringify(log)}, urls.map((url) => url + "\\n").join(""));
});
`,
  );
  const run = await execa(
    process.execPath,
    ["--import", pathToFileURL(preload).href, options.file ?? BIN, ...args],
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

/** The CLI bundle's output files, by URL, with the source modules each holds. */
async function bundleOutputs(): Promise<Map<string, string[]>> {
  const dist = join(BIN, "..", "..", "..");
  const meta = JSON.parse(
    await readFile(join(dist, "cli-bundle.json"), "utf8"),
  ) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  const outputs = new Map<string, string[]>();
  for (const [file, output] of Object.entries(meta.outputs))
    outputs.set(
      pathToFileURL(join(dist, "..", file)).href,
      Object.keys(output.inputs),
    );
  return outputs;
}

/**
 * What a run loaded: module URLs, with each bundle file replaced by the source modules it holds
 * (`src/api/build.ts`, `node_modules/commander/lib/command.js`), so that a module bundled by
 * mistake counts as loaded. Every envpack module the CLI loads must come from the bundle.
 */
async function loadedSources(urls: string[]): Promise<string[]> {
  const outputs = await bundleOutputs();
  const ownDist = pathToFileURL(join(BIN, "..", "..", "..")).href + "/";
  const sources: string[] = [];
  for (const url of urls) {
    const inputs = outputs.get(url);
    if (inputs !== undefined) sources.push(...inputs);
    else {
      expect(url.startsWith(ownDist), `${url} is outside the bundle`).toBe(
        false,
      );
      sources.push(url);
    }
  }
  return sources;
}

/** The heavy packages among loaded modules (URLs or bundled source paths). */
function heavyIn(modules: string[]): string[] {
  return HEAVY.filter((name) =>
    modules.some((module) => `/${module}`.includes(`/node_modules/${name}/`)),
  );
}

describe("start-up", () => {
  it("`envpack --help` loads none of the heavy modules", async () => {
    const { urls } = await loadedModules(["--help"]);
    // The hook saw the CLI itself: the listing is real.
    expect(urls.some((url) => url.endsWith("/cli/main.js"))).toBe(true);
    // The executable, the command line and the error classes, all CommonJS: no chunk, no ES
    // module loader (the listing's hook sees main.js too, as a module the hooked loader runs).
    const outputs = await bundleOutputs();
    const files = new Set(
      urls.filter((url) => outputs.has(url)).map((url) => basename(url)),
    );
    expect([...files].sort()).toEqual(["cli.js", "errors.js", "main.js"]);
    const sources = await loadedSources(urls);
    expect(sources).toContain("node_modules/commander/lib/command.js");
    expect(sources).toContain("src/cli/main.ts");
    expect(heavyIn(sources)).toEqual([]);
    // commander's executable subcommands (unused) no longer load child processes and sockets.
    expect(urls).toContain("node:fs");
    expect(urls).not.toContain("node:child_process");
    // Nothing past the command line and the core: no api, scanner, packer or registry module.
    expect(
      sources.filter((path) => /^(src\/(?!cli\/|core\/)|packer\/)/.test(path)),
    ).toEqual([]);
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
    // Four CommonJS files: the executable, the command line, the light api and the error
    // classes; no ES chunk.
    const outputs = await bundleOutputs();
    const files = new Set(
      hit.urls.filter((url) => outputs.has(url)).map((url) => basename(url)),
    );
    expect([...files].sort()).toEqual([
      "api-light.js",
      "cli.js",
      "errors.js",
      "main.js",
    ]);
    // The native batch stats, loaded from where npm install built them (beside dist/).
    const addon = join(BIN, "..", "..", "..", "..", "build", "Release");
    expect(hit.urls).toContain(
      pathToFileURL(join(addon, "tree_stat.node")).href,
    );
    const sources = await loadedSources(hit.urls);
    expect(sources).toContain("src/api/build.ts");
    expect(heavyIn(sources)).toEqual([]);
  });

  it("a cold `envpack build` of a Python app loads no schema library or JavaScript parser", async () => {
    const conda = inject("fixtures").conda;
    if (!conda) throw new Error("the Conda fixture was not built");
    const cwd = await tempDir("envpack-pyapp-");
    await writeFile(join(cwd, "app.py"), "import json\nimport six\n");
    const { urls, stdout } = await loadedModules(
      ["build", "--json", "app.py", "--env", conda.prefix],
      { cwd, env: { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") } },
    );
    expect(JSON.parse(stdout)).toMatchObject({ source: "built" });
    // The pack worker's modules are files of their own (dist/packer/), by design.
    const sources = await loadedSources(
      urls.filter((url) => !url.includes("/packer/")),
    );
    const heavy = heavyIn(sources);
    // It packs: the listing is real.
    expect(heavy).toEqual(expect.arrayContaining(["zstd-napi", "tar"]));
    expect(sources).toContain("packer/write-bundle.ts");
    expect(heavy.filter((n) => [...FOR_JAVASCRIPT, "zod"].includes(n))).toEqual(
      [],
    );
    // A build never unpacks: the packer's barrel loads the unpacker on first use.
    expect(
      sources.filter((path) =>
        /^packer\/(unpack-|ensure-unpacked|entry-guard|layers\/ensure-layer)/.test(
          path,
        ),
      ),
    ).toEqual([]);
  });

  /** Per language: an app to scan, the parsers its scan must load and what it must not. */
  const scans = [
    {
      title:
        "`envpack scan` of a Node app loads its parsers, none of the packer, registry or compiler",
      kind: "node",
      app: async () => ({
        cwd: await appCopy("hello"),
        args: ["src/main.ts"],
        // A fresh cache: a warm one could answer the scan without parsing.
        env: { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") },
      }),
      // The listing sees the parsers this scan needs, CommonJS ones included: TypeScript that
      // parses is oxc-parser's, and babel (its fallback) stays unloaded.
      loads: ["oxc-parser", "oxc-resolver"],
      never: [
        ...HEAVY.filter((name) => !FOR_JAVASCRIPT.includes(name)),
        "@babel/parser",
        "@babel/types",
      ],
    },
    {
      title:
        "`envpack scan` of a JavaScript app reads its packages' files with oxc-parser, not babel",
      kind: "node",
      app: async () => {
        const realworld = inject("fixtures").apps["realworld"];
        if (realworld === undefined)
          throw new Error("the realworld fixture app was not installed");
        // JavaScript only, beside the fixture's packages (linked, not copied): express's own
        // files (CommonJS) have sites to parse.
        const cwd = await tempDir("envpack-jsapp-");
        await symlink(
          join(realworld, "node_modules"),
          join(cwd, "node_modules"),
        );
        await writeFile(
          join(cwd, "main.js"),
          'const express = require("express");\nconsole.log(typeof express);\n',
        );
        return {
          cwd,
          args: ["main.js"],
          env: { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") },
        };
      },
      // No TypeScript here: oxc-parser is loaded for the package's file, as the CLI is a
      // one-shot process; the app's own file is meriyah's.
      loads: ["oxc-parser", "meriyah", "oxc-resolver"],
      never: [
        ...HEAVY.filter((name) => !FOR_JAVASCRIPT.includes(name)),
        "@babel/parser",
        "@babel/types",
      ],
    },
    {
      title:
        "`envpack scan` of a Python app loads no JavaScript parser, resolver or compiler",
      kind: "conda",
      app: async () => {
        const conda = inject("fixtures").conda;
        if (!conda) throw new Error("the Conda fixture was not built");
        const cwd = await tempDir("envpack-pyapp-");
        await writeFile(join(cwd, "app.py"), "import json\nimport six\n");
        return { cwd, args: ["app.py", "--env", conda.prefix], env: {} };
      },
      loads: ["web-tree-sitter"],
      never: [...FOR_JAVASCRIPT, "esbuild"],
    },
  ];
  for (const scan of scans)
    it(scan.title, async () => {
      const { cwd, args, env } = await scan.app();
      const { urls, stdout } = await loadedModules(
        ["scan", "--json", ...args],
        { cwd, env },
      );
      expect(JSON.parse(stdout)).toMatchObject({ kind: scan.kind });
      const heavy = heavyIn(await loadedSources(urls));
      expect(heavy).toEqual(expect.arrayContaining(scan.loads));
      expect(heavy.filter((n) => scan.never.includes(n))).toEqual([]);
    });

  it('`import { Executor } from "envpack"` loads no process library, HTTP client, tar, zstd, compiler or schema library', async () => {
    const dir = await tempDir();
    const script = join(dir, "import-envpack.mjs");
    const index = join(BIN, "..", "..", "index.js");
    await writeFile(
      script,
      `import { Executor } from ${JSON.stringify(pathToFileURL(index).href)};
console.log(typeof Executor);
`,
    );
    const { urls, stdout } = await loadedModules([], { file: script });
    expect(stdout.trim()).toBe("function");
    expect(urls.some((url) => url.endsWith("/api/executor.js"))).toBe(true);
    expect(
      heavyIn(urls).filter((n) =>
        ["execa", "node-fetch", "tar", "zstd-napi", "esbuild", "zod"].includes(
          n,
        ),
      ),
    ).toEqual([]);
  });
});
