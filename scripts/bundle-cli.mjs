// `npm run build`, after tsc: bundles the CLI (src/cli/main.ts and all of envpack's own modules it
// reaches) into dist/src/cli/main.js, so that a command resolves and loads a few files rather than
// dozens. The pure JavaScript packages that read no file of their own (BUNDLED) are bundled too;
// every other package stays external (native addons, wasm and esbuild's binary find their files
// as installed). Dynamic imports stay chunks beside main.js, loaded when a command runs; esbuild's
// metafile goes to dist/cli-bundle.json for the start-up test.
//
// Every output file lives in dist/src/cli/, two levels below dist/ like the compiled modules, so
// code that finds envpack's files from its own URL (src/core/own-files.ts) works the same in the
// bundle. Worker threads (packer/*.mjs), runtime/ and the trace hooks stay files of their own.

import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..");
const outdir = join(root, "dist", "src", "cli");
/** Pure JavaScript packages of many small modules: cheaper to load as part of a chunk than file by file. */
const BUNDLED = ["commander", "execa", "node-fetch", "smol-toml", "tar", "zod"];
const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
const external = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })
  .filter((name) => !BUNDLED.includes(name))
  .flatMap((name) => [name, `${name}/*`]);

// Chunk names change with their contents: drop the previous build's.
for (const file of await readdir(outdir))
  if (/^chunk-.*\.js(\.map)?$/.test(file)) await rm(join(outdir, file));

/**
 * commander requires node:child_process at load for executable subcommands, which envpack has
 * none of; loading it (with net, dgram and the stream stack) was a tenth of `--help`. commander's
 * import of it is served by a stand-in that requires the real module on first use.
 */
const lazyChildProcess = {
  name: "lazy-child-process",
  setup(build) {
    build.onResolve({ filter: /^node:child_process$/ }, (args) =>
      args.importer.includes(`${join("node_modules", "commander")}`)
        ? { path: "child_process", namespace: "lazy-builtin" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, () => ({
      contents:
        'module.exports = { spawn: (...args) => require("node:child_process").spawn(...args) };',
      loader: "js",
    }));
  },
};

/**
 * src/core/zod.ts loads zod with `require` (a schema is built synchronously, on first use), which
 * would bundle zod's CommonJS build; its ES module build is the one an import bundles, smaller.
 */
const zodAsModule = {
  name: "zod-as-module",
  setup(build) {
    build.onResolve({ filter: /^zod$/ }, (args) =>
      args.kind === "require-call"
        ? build.resolve(args.path, {
            kind: "import-statement",
            resolveDir: args.resolveDir,
          })
        : undefined,
    );
  },
};

const result = await build({
  entryPoints: [join(root, "src", "cli", "main.ts")],
  absWorkingDir: root,
  outdir,
  entryNames: "[name]",
  chunkNames: "chunk-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  plugins: [lazyChildProcess, zodAsModule],
  // commander and execa's helpers are CommonJS: their require() calls of Node builtins need a
  // require in ES module scope.
  banner: {
    js: 'import { createRequire as __envpackCreateRequire } from "node:module"; const require = __envpackCreateRequire(import.meta.url);',
  },
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});
await writeFile(
  join(root, "dist", "cli-bundle.json"),
  JSON.stringify(result.metafile),
);
