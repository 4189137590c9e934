// Enforces STYLE.md §2: imports point down the layers, L1 folders do not import each other,
// across folders only a folder's index.ts (or its light.ts) is imported (static and dynamic imports alike), each
// layer uses only the packages its job needs, runtime/ uses only Node's builtins, and no module
// imports itself through others (type-only imports included).

import { readFile, readdir } from "node:fs/promises";
import { builtinModules } from "node:module";
import { dirname, join, relative, sep } from "node:path";
import { Project, SyntaxKind, type SourceFile } from "ts-morph";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..");

/** Which folders each folder may import (besides itself and npm packages). */
const ALLOWED: Record<string, string[]> = {
  "src/core": [],
  // The Conda prefix model scan and packer share (STYLE §2: one concept moves below both).
  "src/conda": ["src/core"],
  "src/scan": ["src/core", "src/conda"],
  packer: ["src/core", "src/conda"],
  "src/registry": ["src/core"],
  "src/exec": ["src/core", "packer"],
  "src/api": [
    "src/core",
    "src/conda",
    "src/scan",
    "packer",
    "src/registry",
    "src/exec",
  ],
  "src/cli": ["src/api", "src/core"],
  src: ["src/api", "src/core"],
  // Benchmarks measure layers directly as well as through the API.
  bench: [
    "src",
    "src/api",
    "src/core",
    "src/conda",
    "src/scan",
    "src/registry",
    "src/exec",
    "packer",
  ],
};

/**
 * The npm packages each folder may import (STYLE §2 with the jobs §1 gives each folder): core
 * only the schema library; each L1 folder the tools of its trade; the CLI only its argument
 * parser (everything heavy comes through api, loaded inside actions); runtime/ nothing at all.
 */
const PACKAGES: Record<string, string[]> = {
  "src/core": ["zod"],
  "src/conda": ["zod"],
  "src/scan": [
    "@babel/parser",
    "@babel/types",
    "meriyah",
    "oxc-parser",
    "oxc-resolver",
    "web-tree-sitter",
    // Asks the environment's interpreter for its builtin modules.
    "execa",
    // Reads a Python app's pyproject.toml.
    "smol-toml",
  ],
  packer: ["tar", "zstd-napi", "zod", "execa"],
  "src/registry": ["node-fetch"],
  "src/exec": ["execa"],
  // Compiles module apps for the executor.
  "src/api": ["esbuild", "execa"],
  "src/cli": ["commander"],
  src: [],
  runtime: [],
  // Benchmarks time envpack against its peers.
  bench: ["@vercel/nft", "esbuild", "execa"],
};

/** A folder's barrels: index.js, and light.js, the second barrel it offers for start-up paths (STYLE §2). */
const BARRELS = ["index.js", "light.js"];

function folderOf(file: string): string {
  const rel = relative(repo, file).split(sep).join("/");
  for (const top of ["packer", "bench", "runtime"])
    if (rel.startsWith(`${top}/`)) return top;
  const parts = rel.split("/");
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : "src";
}

/** Every module specifier of a file: import/export declarations (type-only too) and literal import(). */
function specifiers(source: SourceFile): string[] {
  const fromDeclarations = [
    ...source.getImportDeclarations(),
    ...source.getExportDeclarations(),
  ].map((d) => d.getModuleSpecifierValue());
  const fromDynamic = source
    .getDescendantsOfKind(SyntaxKind.CallExpression)
    .filter(
      (call) => call.getExpression().getKind() === SyntaxKind.ImportKeyword,
    )
    .map((call) =>
      call
        .getArguments()[0]
        ?.asKind(SyntaxKind.StringLiteral)
        ?.getLiteralValue(),
    );
  return [...fromDeclarations, ...fromDynamic].filter(
    (s): s is string => s !== undefined,
  );
}

/** `@scope/name` or `name` of a bare specifier (`tar/header` → `tar`). */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return (
    specifier.startsWith("@") ? parts.slice(0, 2) : parts.slice(0, 1)
  ).join("/");
}

/** The project's files (src, packer, bench) plus runtime/'s JavaScript, which tsconfig leaves out. */
async function loadProject(): Promise<SourceFile[]> {
  const project = new Project({
    tsConfigFilePath: join(repo, "tsconfig.json"),
    skipFileDependencyResolution: true,
  });
  for (const name of await readdir(join(repo, "runtime")))
    if (/\.[cm]?js$/.test(name))
      project.addSourceFileAtPath(join(repo, "runtime", name));
  return project
    .getSourceFiles()
    .filter((s) => !s.getFilePath().includes(`${sep}node_modules${sep}`));
}

/** The source file a relative specifier names (`./x.js` is `x.ts` in the sources). */
function resolveRelative(
  from: string,
  specifier: string,
  known: Set<string>,
): string | undefined {
  const target = join(dirname(from), specifier);
  return [target, target.replace(/\.js$/, ".ts")].find((f) => known.has(f));
}

/** The strongly connected components of more than one file (or a file importing itself). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const lowlink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    indices.set(node, index);
    lowlink.set(node, index);
    index++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        lowlink.set(node, Math.min(lowlink.get(node)!, lowlink.get(next)!));
      } else if (onStack.has(next)) {
        lowlink.set(node, Math.min(lowlink.get(node)!, indices.get(next)!));
      }
    }
    if (lowlink.get(node) === indices.get(node)) {
      const component: string[] = [];
      for (;;) {
        const member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
        if (member === node) break;
      }
      if (component.length > 1 || graph.get(node)?.has(node))
        found.push(component.map((f) => relative(repo, f)).sort());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return found;
}

describe("architecture", async () => {
  const files = await loadProject();
  const known = new Set(files.map((s) => s.getFilePath() as string));

  it("has no import edge outside the layer table", () => {
    const violations: string[] = [];
    expect(files.length).toBeGreaterThan(10);
    for (const source of files) {
      const from = source.getFilePath();
      const fromFolder = folderOf(from);
      for (const specifier of specifiers(source)) {
        if (!specifier.startsWith(".")) continue;
        const target = join(dirname(from), specifier);
        const toFolder = folderOf(target);
        if (toFolder === fromFolder) continue;
        const where = `${relative(repo, from)} → ${specifier}`;
        if (!(ALLOWED[fromFolder] ?? []).includes(toFolder)) {
          violations.push(`${where}: ${fromFolder} may not import ${toFolder}`);
        } else if (
          toFolder !== "src" &&
          !BARRELS.some((barrel) => target.endsWith(`${sep}${barrel}`))
        ) {
          violations.push(
            `${where}: import ${toFolder}/index.js (or light.js), not a file inside it`,
          );
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it("imports only the packages each layer may use, shipped ones outside bench, builtins as node:", async () => {
    const manifest = JSON.parse(
      await readFile(join(repo, "package.json"), "utf8"),
    ) as { dependencies: Record<string, string> };
    const builtins = new Set(builtinModules);
    const violations: string[] = [];
    for (const source of files) {
      const from = source.getFilePath();
      const folder = folderOf(from);
      for (const specifier of specifiers(source)) {
        if (specifier.startsWith(".") || specifier.startsWith("node:"))
          continue;
        const where = `${relative(repo, from)} → ${specifier}`;
        const name = packageOf(specifier);
        if (builtins.has(name))
          violations.push(`${where}: name Node's builtins as node:${name}`);
        else if (!(PACKAGES[folder] ?? []).includes(name))
          violations.push(`${where}: ${folder} may not import ${name}`);
        else if (folder !== "bench" && !(name in manifest.dependencies))
          violations.push(
            `${where}: ${name} is not in package.json dependencies`,
          );
      }
    }
    expect(violations).toEqual([]);
  });

  it("keeps runtime/ on Node's builtins alone", () => {
    const runtime = files.filter(
      (s) => folderOf(s.getFilePath()) === "runtime",
    );
    expect(runtime.map((s) => relative(repo, s.getFilePath()))).toContain(
      join("runtime", "module-runner.mjs"),
    );
    const violations = runtime.flatMap((source) =>
      specifiers(source)
        .filter((s) => !s.startsWith("node:"))
        .map((s) => `${relative(repo, source.getFilePath())} → ${s}`),
    );
    expect(violations).toEqual([]);
  });

  it("has no import cycle, type-only imports included", () => {
    const graph = new Map<string, Set<string>>();
    for (const source of files) {
      const from = source.getFilePath() as string;
      const edges = new Set<string>();
      for (const specifier of specifiers(source)) {
        if (!specifier.startsWith(".")) continue;
        const target = resolveRelative(from, specifier, known);
        if (target !== undefined) edges.add(target);
      }
      graph.set(from, edges);
    }
    expect(cycles(graph)).toEqual([]);
  });
});
