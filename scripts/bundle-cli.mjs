// `npm run build`, after tsc: bundles the CLI into dist/src/cli/, so that a command resolves and
// loads a few files rather than dozens, and `--help` loads no ES module at all:
// - main.js: the executable (src/cli/bin.ts), which turns V8's code cache on for the CommonJS
//   files below (src/cli/code-cache.ts: compiling them was about a sixth of what a cache hit
//   cost above `node -e 0`) and requires:
// - cli.js: the command line (src/cli/ and commander) as one CommonJS file (dist/src/cli/ is a
//   CommonJS scope): Node's ES module loader, its thread pool and its per-module linking were half
//   of what `--help` cost above `node -e 0`. A command's action requires or imports the api from:
// - api-light.js: src/api/light.ts (build, scan, run, report, config) as one CommonJS file, which
//   cli.js requires when a command runs: a cache hit, a ready `run` and a scan's start load no
//   ES module. What it imports dynamically (the scanner, the packer, the registry client, execa...)
//   it imports from lazy-*.mjs, entries of:
// - api-index.mjs, lazy-*.mjs and their chunk-*.mjs: everything else envpack runs, ES modules
//   split into chunks that load when a command needs them;
// - errors.js: src/core/errors.ts, the one copy of the error classes every file uses (CommonJS,
//   which the chunks require too), so that `instanceof` holds across them;
// - zod.js: zod, CommonJS, required when a schema is first built (see zodApart).
// api-light.js and the chunks each hold their own copy of the small modules both use (core, the
// local store, the fingerprint): stateless but for memo caches, whose copies only memoise apart.
// The pure JavaScript packages that read no file of their own (BUNDLED) are bundled; every other
// package stays external (native addons, wasm and esbuild's binary find their files as installed).
// esbuild's metafiles go to dist/cli-bundle.json for the start-up test.
//
// Every output file lives in dist/src/cli/, two levels below dist/ like the compiled modules, so
// code that finds envpack's files from its own URL (src/core/own-files.ts) works the same in the
// bundle. Worker threads (packer/*.mjs), runtime/ and the trace hooks stay files of their own.

import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
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
  if (/^((chunk|lazy)-.*\.m?js|api-light\.mjs)(\.map)?$/.test(file))
    await rm(join(outdir, file));

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
 * src/core/zod.ts loads zod with `require`, on first use (a schema is built synchronously): the
 * bundles require zod.js, zod's ES module build (smaller than its CommonJS one) bundled as a
 * CommonJS file of its own, so that a command building no schema (a cold Conda build reads its
 * records without one) does not parse zod's 800 KB as part of a file it loads for other code.
 */
const zodApart = {
  name: "zod-apart",
  setup(build) {
    build.onResolve({ filter: /^zod$/ }, (args) =>
      args.kind === "require-call"
        ? { path: "./zod.js", external: true }
        : undefined,
    );
  },
};

/** The api barrels the command line imports: built once, loaded by its commands' actions. */
const LIGHT = join(root, "src", "api", "light.ts");
const API = new Map([
  [LIGHT, "./api-light.js"],
  [join(root, "src", "api", "index.ts"), "./api-index.mjs"],
]);
const ERRORS = join(root, "src", "core", "errors.ts");
/** What errors.ts exports at run time, read from its compiled module (tsc ran first). */
const errorNames = Object.keys(
  await import(
    pathToFileURL(join(root, "dist", "src", "core", "errors.js")).href
  ),
);

/**
 * Imports of the api barrels become imports of their built files (but in the build that makes
 * them), and errors.ts becomes errors.js required, its names listed: a module esbuild can see
 * through, so that a barrel re-exporting it still bundles only what its importer uses.
 */
function sharedModules({ ownApi }) {
  return {
    name: "shared-modules",
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        const path = join(args.resolveDir, args.path).replace(/\.js$/, ".ts");
        const file = API.get(path);
        return file === undefined || ownApi
          ? undefined
          : { path: file, external: true };
      });
      build.onResolve({ filter: /^envpack-errors$/ }, () => ({
        path: "./errors.js",
        external: true,
      }));
      // Required, not imported: an ES module importing CommonJS runs Node's cjs-module-lexer over
      // it, which a cache hit then loads and initialises for this one file.
      build.onLoad({ filter: /[\\/]src[\\/]core[\\/]errors\.ts$/ }, () => ({
        contents: `export const { ${errorNames.join(", ")} } = require("envpack-errors");`,
        loader: "js",
      }));
    },
  };
}

/**
 * envpack's modules have no side effects at import (STYLE §11): the command line bundles only the
 * ones it uses of the barrels it imports, not every module they list (and the builtins those load).
 */
const ownModulesPure = {
  name: "own-modules-pure",
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, async (args) => {
      if (args.pluginData === "pure" || args.importer.includes("node_modules"))
        return undefined;
      const result = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: "pure",
      });
      return result.errors.length > 0 || result.external
        ? result
        : { ...result, sideEffects: false };
    });
  },
};

/**
 * In cli.js, the command line's `import()` of the light api becomes a `require` of api-light.js
 * on first use: a CommonJS file that an `import()` would hand to the ES module loader.
 */
const requireLight = {
  name: "require-light",
  setup(build) {
    build.onResolve({ filter: /light\.js$/ }, (args) =>
      join(args.resolveDir, args.path).replace(/\.js$/, ".ts") === LIGHT
        ? { path: "api-light", namespace: "light-api" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "light-api" }, () => ({
      contents: 'module.exports = require("./api-light.js");',
      loader: "js",
    }));
    build.onResolve({ filter: /^\.\/api-light\.js$/ }, (args) =>
      args.namespace === "light-api"
        ? { path: args.path, external: true }
        : undefined,
    );
  },
};

/** The ES module entries api-light.js imports dynamically: output name → source file or package. */
const lazyEntries = new Map();

/**
 * In api-light.js, a dynamic `import()` of one of envpack's modules or of a bundled package stays
 * an `import()`, of an ES module entry (lazy-<path>.mjs) of the chunked build: what it loads is
 * loaded only when used, and the light file holds none of it.
 */
const lazyImports = {
  name: "lazy-imports",
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== "dynamic-import") return undefined;
      const own = /^\.\.?\//.test(args.path);
      if (!own && !BUNDLED.includes(args.path)) return undefined;
      const source = own
        ? join(args.resolveDir, args.path).replace(/\.js$/, ".ts")
        : args.path;
      const name = `lazy-${(own ? relative(root, source) : `package-${source}`)
        .replace(/\.ts$/, "")
        .replace(/[^A-Za-z0-9]+/g, "-")}`;
      lazyEntries.set(name, source);
      return { path: `./${name}.mjs`, external: true };
    });
  },
};

/** A bundled package as an entry of the chunked build: a module re-exporting it. */
const packageEntries = {
  name: "package-entries",
  setup(build) {
    build.onResolve({ filter: /^package:/ }, (args) => ({
      path: args.path.slice("package:".length),
      namespace: "package-entry",
    }));
    build.onLoad({ filter: /.*/, namespace: "package-entry" }, (args) => ({
      contents: `export * from ${JSON.stringify(args.path)};`,
      resolveDir: root,
      loader: "js",
    }));
  },
};

const REQUIRE_BANNER =
  'import { createRequire as __envpackCreateRequire } from "node:module"; const require = __envpackCreateRequire(import.meta.url);';

const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  platform: "node",
  target: "node20",
  external,
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
};
/**
 * The command line and the light api as CommonJS files whose modules still find envpack's files
 * from their URL (src/core/own-files.ts): `import.meta.url` becomes the file's own.
 */
const commonJsWithOwnUrl = {
  format: "cjs",
  define: { "import.meta.url": "__envpackModuleUrl" },
  banner: {
    js: 'const __envpackModuleUrl = require("node:url").pathToFileURL(__filename).href;',
  },
};
/**
 * The files the code cache compiles (cli.js, api-light.js: see src/cli/code-cache.ts) import the
 * chunked build's files through `__lazy`, the executable's `import()` (require.envpackImport):
 * Node 20 loses the import callback of a script compiled from cached data. A file Node compiles
 * itself (the cache turned off) imports as usual.
 */
const withLazyImport = {
  ...commonJsWithOwnUrl,
  banner: {
    js: `${commonJsWithOwnUrl.banner.js} const __lazy = require.envpackImport ?? ((specifier) => import(specifier));`,
  },
};

/**
 * Turns each `import("./x.mjs")` of an external file in `result`'s outputs into `__lazy("./x.mjs")`
 * (`__lazy` is as long as `import`: the source maps still line up), and fails the build on one
 * it cannot find.
 */
async function routeDynamicImports(result) {
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const specifiers = new Set(
      output.imports
        .filter((i) => i.kind === "dynamic-import" && i.external)
        .map((i) => i.path),
    );
    if (specifiers.size === 0) continue;
    const path = join(root, file);
    let code = await readFile(path, "utf8");
    for (const specifier of specifiers) {
      const call = `import(${JSON.stringify(specifier)})`;
      if (!code.includes(call))
        throw new Error(`bundle-cli: ${file} has no ${call} to route`);
      code = code.replaceAll(call, `__lazy(${JSON.stringify(specifier)})`);
    }
    await writeFile(path, code);
  }
}

// The light api first: it names the lazy entries of the chunked build.
const light = await build({
  ...common,
  entryPoints: { "api-light": LIGHT },
  ...withLazyImport,
  plugins: [
    zodApart,
    lazyImports,
    sharedModules({ ownApi: true }),
    ownModulesPure,
  ],
});
const api = await build({
  ...common,
  entryPoints: {
    "api-index": join(root, "src", "api", "index.ts"),
    ...Object.fromEntries(
      [...lazyEntries].map(([name, source]) => [
        name,
        source.startsWith("/") ? source : `package:${source}`,
      ]),
    ),
  },
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunk-[hash]",
  splitting: true,
  format: "esm",
  plugins: [zodApart, packageEntries, sharedModules({ ownApi: true })],
  // execa's helpers are CommonJS: their require() calls of Node builtins need a require in ES
  // module scope (kept below only where one is used).
  banner: { js: REQUIRE_BANNER },
});
// A createRequire per chunk was a few ms of a cache hit's fifteen: the banner stays in the chunks
// whose code names `require` (esbuild's __require helper, and a word in a string keeps it too).
// An empty line takes its place, so that the source maps still line up.
for (const file of Object.keys(api.metafile.outputs)) {
  if (!file.endsWith(".mjs")) continue;
  const path = join(root, file);
  const code = await readFile(path, "utf8");
  const body = code.slice(REQUIRE_BANNER.length);
  if (code.startsWith(REQUIRE_BANNER) && !/\brequire\b/.test(body))
    await writeFile(path, body);
}
const commandLine = await build({
  ...common,
  entryPoints: { cli: join(root, "src", "cli", "main.ts") },
  ...withLazyImport,
  plugins: [
    lazyChildProcess,
    requireLight,
    sharedModules({ ownApi: false }),
    ownModulesPure,
  ],
});
await routeDynamicImports(light);
await routeDynamicImports(commandLine);
// The executable: the code cache (src/cli/code-cache.ts) turned on, then cli.js required.
const executable = await build({
  ...common,
  entryPoints: { main: join(root, "src", "cli", "bin.ts") },
  ...commonJsWithOwnUrl,
  define: {
    ...commonJsWithOwnUrl.define,
    "import.meta.dirname": "__dirname",
  },
});
const errors = await build({
  ...common,
  entryPoints: { errors: ERRORS },
  format: "cjs",
});
const zod = await build({
  ...common,
  stdin: { contents: 'export * from "zod";', resolveDir: root },
  outfile: join(outdir, "zod.js"),
  outdir: undefined,
  format: "cjs",
  mainFields: ["module", "main"],
});
// main.js, cli.js, api-light.js, errors.js and zod.js are CommonJS: the rest of dist/ stays ES
// modules (package.json `type`).
await writeFile(
  join(outdir, "package.json"),
  `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`,
);
const outputs = {};
const inputs = {};
for (const { metafile } of [light, api, commandLine, executable, errors, zod]) {
  Object.assign(outputs, metafile.outputs);
  Object.assign(inputs, metafile.inputs);
}
await writeFile(
  join(root, "dist", "cli-bundle.json"),
  JSON.stringify({ inputs, outputs }),
);
