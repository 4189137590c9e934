// Compiles a Node app's TypeScript files to JavaScript for its bundle (Node 20 cannot run .ts),
// pointing each relative import at the compiled file it resolved to.

import { readFileSync } from "node:fs";
import { join, posix } from "node:path";
import {
  transform,
  version as esbuildVersion,
  type Format,
  type Loader,
  type TransformOptions,
} from "esbuild";
import {
  InputError,
  canonicalJson,
  compare,
  digestOf,
  settleAll,
  type Manifest,
} from "../core/light.js";
import { rewriteSpecifiers } from "../scan/index.js";
import { readCompiled, writeCompiled } from "./compiled-files.js";

const OUTPUT_EXT: Record<string, string> = {
  ".ts": ".js",
  ".tsx": ".js",
  ".mts": ".mjs",
  ".cts": ".cjs",
};

/** The compiled bytes of each TypeScript app file, by root-relative source path. */
export type CompiledFiles = Map<string, { path: string; data: Uint8Array }>;

/** Options of {@link compileApp}. */
export interface CompileAppOptions {
  /**
   * The build's cache directory: each file's output is kept under `compiled/`, keyed by its
   * source, its import targets and the compiler's settings, so a rebuild compiles only the files
   * that changed.
   */
  cacheDir?: string | undefined;
}

/**
 * Compiles the manifest's `.ts .tsx .mts .cts` app files, each on its own (esbuild, types stripped,
 * module syntax kept as Node will load it: ESM under `"type": "module"` or for `.mts`, CommonJS
 * otherwise) and rewrites relative and aliased imports to the compiled files' names. Every
 * file's request is sent to esbuild (its own process) before this returns its promise, so the
 * caller can do other work while they compile.
 * @throws InputError ENVPACK_INPUT_ENTRY_UNSUPPORTED when a file does not compile (the first in
 *   the manifest's order)
 */
export function compileApp(
  manifest: Manifest,
  options: CompileAppOptions = {},
): Promise<CompiledFiles> {
  try {
    return compileAll(manifest, options.cacheDir);
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

function compileAll(
  manifest: Manifest,
  cacheDir: string | undefined,
): Promise<CompiledFiles> {
  const out: CompiledFiles = new Map();
  const outputPath = (path: string) => {
    const ext = posix.extname(path);
    const next = OUTPUT_EXT[ext];
    return next === undefined || path.endsWith(".d.ts")
      ? path
      : path.slice(0, -ext.length) + next;
  };
  const taken = new Set(manifest.files.map((f) => f.path));
  const isEsmScope = esmScopes(manifest);
  const pending: Array<Promise<[string, { path: string; data: Uint8Array }]>> =
    [];
  for (const file of manifest.files) {
    const ext = posix.extname(file.path);
    if (
      OUTPUT_EXT[ext] === undefined ||
      file.path.endsWith(".d.ts") ||
      file.problem
    )
      continue;
    const target = outputPath(file.path);
    if (taken.has(target)) {
      throw new InputError(
        "ENVPACK_INPUT_ENTRY_UNSUPPORTED",
        `${file.path} and ${target} would both become ${target}`,
        {
          hint: "Rename one of them: a bundle holds one compiled file per name.",
        },
      );
    }
    const targets = new Map<string, string>();
    for (const record of manifest.imports) {
      if (
        record.file !== file.path ||
        !record.resolved.startsWith("file:") ||
        record.target === undefined
      )
        continue;
      let spec = posix.relative(
        posix.dirname(target),
        outputPath(record.target),
      );
      if (!spec.startsWith(".")) spec = `./${spec}`;
      targets.set(record.specifier, spec);
    }
    const source = readFileSync(
      join(manifest.root, ...file.path.split("/")),
      "utf8",
    );
    const format: Format =
      ext === ".mts"
        ? "esm"
        : ext === ".cts"
          ? "cjs"
          : isEsmScope(file.path)
            ? "esm"
            : "cjs";
    const settings: TransformOptions = {
      loader: (ext === ".tsx" ? "tsx" : "ts") as Loader,
      format,
      target: `node${manifest.runtime.version.split(".")[0] ?? "20"}`,
      sourcefile: file.path,
      // Node 20.10+ reads `with { type: "json" }`; esbuild would otherwise drop it for node20.
      supported: {
        "top-level-await": format === "esm",
        "import-attributes": true,
      },
    };
    // Everything the output depends on: the same key is the same bytes.
    const key = digestOf(
      canonicalJson({
        esbuild: esbuildVersion,
        settings,
        targets: [...targets].sort(([a], [b]) => compare(a, b)),
        source,
      }),
    );
    const known = cacheDir === undefined ? null : readCompiled(cacheDir, key);
    const compiling =
      known !== null
        ? Promise.resolve<[string, { path: string; data: Uint8Array }]>([
            file.path,
            { path: target, data: known },
          ])
        : transform(
            // Each target spelt as the file imports it (`./x.js` for x.ts) leaves the source as
            // it is: it is not parsed again to find them.
            [...targets].every(([specifier, spec]) => specifier === spec)
              ? source
              : rewriteSpecifiers(source, ext, (specifier) =>
                  targets.get(specifier),
                ),
            settings,
          ).then(
            async (
              result,
            ): Promise<[string, { path: string; data: Uint8Array }]> => {
              const data = Buffer.from(result.code);
              if (cacheDir !== undefined)
                await writeCompiled(cacheDir, key, data);
              return [file.path, { path: target, data }];
            },
            (error: unknown) => {
              throw new InputError(
                "ENVPACK_INPUT_ENTRY_UNSUPPORTED",
                `${file.path} does not compile: ${firstLine(error)}`,
                {
                  hint: "Fix the file (run tsc) and build again.",
                  cause: error,
                },
              );
            },
          );
    pending.push(compiling);
  }
  // All settle before the first failure (in the manifest's order) is reported: the same error
  // whichever compiles first.
  return settleAll(pending).then((results) => {
    for (const [path, compiled] of results) out.set(path, compiled);
    return out;
  });
}

/** Whether an app file is in an ESM scope: its nearest app package.json says `"type": "module"`. */
function esmScopes(manifest: Manifest): (path: string) => boolean {
  const scopes = new Map<string, boolean>();
  for (const file of manifest.files) {
    if (posix.basename(file.path) !== "package.json") continue;
    const json = JSON.parse(
      readFileSync(join(manifest.root, ...file.path.split("/")), "utf8"),
    ) as { type?: unknown };
    scopes.set(posix.dirname(file.path), json.type === "module");
  }
  return (path) => {
    for (let dir = posix.dirname(path); ; dir = posix.dirname(dir)) {
      const scope = scopes.get(dir);
      if (scope !== undefined) return scope;
      if (dir === "." || dir === "/") return false;
    }
  };
}

/** esbuild's first message with its position, or the error's first line. */
function firstLine(error: unknown): string {
  const first = (
    error as {
      errors?: Array<{
        text: string;
        location?: { line: number; column: number } | null;
      }>;
    }
  ).errors?.[0];
  if (first)
    return first.location
      ? `${first.location.line}:${first.location.column + 1}: ${first.text}`
      : first.text;
  return (
    (error instanceof Error ? error.message : String(error)).split("\n")[0] ??
    ""
  );
}
