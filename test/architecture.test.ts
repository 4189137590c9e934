// Enforces STYLE.md §2: imports point down the layers, L1 folders do not import each other,
// and across folders only a folder's index.ts is imported (static and dynamic imports alike).

import { dirname, join, relative, sep } from "node:path";
import { Project, SyntaxKind, type SourceFile } from "ts-morph";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..");

/** Which folders each folder may import (besides itself and npm packages). */
const ALLOWED: Record<string, string[]> = {
  "src/core": [],
  "src/scan": ["src/core"],
  packer: ["src/core"],
  "src/registry": ["src/core"],
  "src/exec": ["src/core", "packer"],
  "src/api": ["src/core", "src/scan", "packer", "src/registry", "src/exec"],
  "src/cli": ["src/api", "src/core"],
  src: ["src/api", "src/core"],
  // Benchmarks measure layers directly as well as through the API.
  bench: ["src", "src/api", "src/core", "src/scan", "src/registry", "packer"],
};

function folderOf(file: string): string {
  const rel = relative(repo, file).split(sep).join("/");
  if (rel.startsWith("packer/")) return "packer";
  if (rel.startsWith("bench/")) return "bench";
  const parts = rel.split("/");
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : "src";
}

function relativeSpecifiers(source: SourceFile): string[] {
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
    (s): s is string => s !== undefined && s.startsWith("."),
  );
}

describe("architecture", () => {
  it("has no import edge outside the layer table", () => {
    const project = new Project({
      tsConfigFilePath: join(repo, "tsconfig.json"),
      skipFileDependencyResolution: true,
    });
    const violations: string[] = [];
    const files = project
      .getSourceFiles()
      .filter((s) => !s.getFilePath().includes(`${sep}node_modules${sep}`));
    expect(files.length).toBeGreaterThan(10);
    for (const source of files) {
      const from = source.getFilePath();
      const fromFolder = folderOf(from);
      for (const specifier of relativeSpecifiers(source)) {
        const target = join(dirname(from), specifier);
        const toFolder = folderOf(target);
        if (toFolder === fromFolder) continue;
        const where = `${relative(repo, from)} → ${specifier}`;
        if (!(ALLOWED[fromFolder] ?? []).includes(toFolder)) {
          violations.push(`${where}: ${fromFolder} may not import ${toFolder}`);
        } else if (toFolder !== "src" && !target.endsWith(`${sep}index.js`)) {
          violations.push(
            `${where}: import ${toFolder}/index.js, not a file inside it`,
          );
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
