#!/usr/bin/env node
// The README's first command: installs the example app's dependencies from its lockfile, then
// scans it, builds its bundle and runs the app from the bundle with envpack's CLI.

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { prepareAppFixtures } from "./fixtures/apps.mjs";

const repo = fileURLToPath(new URL("..", import.meta.url));
const { hello } = await prepareAppFixtures({ repo, log: (line) => console.error(line), only: ["hello"] });
const cli = join(repo, "dist", "src", "cli", "main.js");

/** Runs `envpack ARGS` in the example app, echoing the command; exits on failure. */
function envpack(args, capture = false) {
  console.log(`\n$ envpack ${args.join(" ")}`);
  const result = spawnSync(process.execPath, [cli, ...args], {
    cwd: hello,
    stdio: ["ignore", capture ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
  return result.stdout;
}

envpack(["scan", "src/main.ts"]);
const built = JSON.parse(envpack(["build", "src/main.ts", "--json"], true));
console.log(`${built.cached ? "cached" : "built"} ${built.digest} (${(built.size / 1e6).toFixed(1)} MB)`);
envpack(["run", built.digest]);
