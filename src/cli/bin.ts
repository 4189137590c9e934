#!/usr/bin/env node
// The `envpack` executable: turns the code cache on for the command line's files, then runs the
// command line (cli.js, main.ts bundled), so that main's own bundle is compiled through the cache
// too. Bundled as CommonJS into dist/src/cli/main.js (scripts/bundle-cli.mjs).

import { createRequire } from "node:module";
import { join } from "node:path";
import { codeCacheDir, commandOf, installCodeCache } from "./code-cache.js";

const here = import.meta.dirname;
installCodeCache({
  codeDir: here,
  cacheDir: codeCacheDir(process.env),
  command: commandOf(process.argv.slice(2)),
  importModule: (specifier) => import(specifier),
});
createRequire(import.meta.url)(join(here, "cli.js"));
