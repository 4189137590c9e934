// `npm install` (and `npm run build` when it is missing or older than its source): builds envpack's
// optional native addon (native/tree-stat.c → build/Release/tree_stat.node) with node-gyp, offline,
// against the headers of the Node that runs this script. A failed build is a warning, not a failed
// install: envpack then computes the same answers in JavaScript (src/core/native-stat.ts).

import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";

const root = join(import.meta.dirname, "..");
const addon = join(root, "build", "Release", "tree_stat.node");
const sources = [
  join(root, "binding.gyp"),
  join(root, "native", "tree-stat.h"),
  join(root, "native", "tree-stat.c"),
  join(root, "native", "tree-check.c"),
  join(root, "native", "source-hash.c"),
  join(root, "native", "pack-read.c"),
];

const mtime = (path) => statSync(path).mtimeMs;
const isUpToDate =
  process.argv.includes("--if-stale") &&
  existsSync(addon) &&
  sources.every((source) => mtime(source) <= mtime(addon));

if (!isUpToDate) {
  // npm tells its scripts where its own node-gyp is; any other caller finds npm's beside node.
  const nodeGyp =
    process.env.npm_config_node_gyp ??
    join(
      dirname(dirname(process.execPath)),
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    );
  // The headers installed with this Node (e.g. /usr/include/node): node-gyp downloads nothing.
  const prefix = dirname(dirname(process.execPath));
  const nodedir =
    process.env.npm_config_nodedir ??
    (existsSync(join(prefix, "include", "node", "node_api.h"))
      ? prefix
      : undefined);
  const args = [nodeGyp, "rebuild", "--loglevel=warn"];
  if (nodedir !== undefined) args.push(`--nodedir=${nodedir}`);
  const run = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  if (run.status !== 0 || !existsSync(addon)) {
    const why =
      run.error?.message ??
      run.stderr.trim().split("\n").slice(-5).join("\n") ??
      `exit ${run.status}`;
    process.stderr.write(
      `envpack: the native addon was not built; envpack computes its stats in JavaScript instead.\n${why}\n`,
    );
  }
}
