// The CLI loads only what a command needs: `--help` loads no parser, tar, zstd, HTTP client,
// process library, schema library or compiler (the modules are listed, nothing is timed).

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { BIN } from "../helpers/cli.js";
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

/** Runs `envpack ARGS` with a module hook that records every module URL loaded; returns the URLs. */
async function loadedModules(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string[]> {
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
    `import { register } from "node:module";
register(${JSON.stringify(pathToFileURL(hooks).href)});
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
  return (await readFile(log, "utf8")).trim().split("\n");
}

/** The heavy packages among loaded module URLs. */
function heavyIn(urls: string[]): string[] {
  return HEAVY.filter((name) =>
    urls.some((url) => url.includes(`/node_modules/${name}/`)),
  );
}

describe("start-up", () => {
  it("`envpack --help` loads none of the heavy modules", async () => {
    const urls = await loadedModules(["--help"]);
    // The hook saw the CLI itself: the listing is real.
    expect(urls.some((url) => url.endsWith("/cli/main.js"))).toBe(true);
    expect(urls.some((url) => url.includes("/node_modules/commander/"))).toBe(
      true,
    );
    expect(heavyIn(urls)).toEqual([]);
  });
});
