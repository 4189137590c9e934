// Table-driven scan cases: each fixtures/scan/<case>/ is scanned from a temp copy and compared
// with its expected.json (regenerate with UPDATE_EXPECTED=1, then review the diff).

import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import type { Manifest } from "../../src/core/index.js";
import { scan } from "../../src/scan/index.js";
import { materialiseCase, readCase } from "../helpers/scan-case.js";
import { tempDir } from "../helpers/temp-dir.js";

const casesDir = join(import.meta.dirname, "..", "..", "fixtures", "scan");
const cases = (await readdir(casesDir, { withFileTypes: true }))
  .filter((e) => e.isDirectory())
  .map((e) => e.name);

/** The parts of a manifest a case pins down (everything but hashes, sizes and host facts). */
function project(manifest: Manifest) {
  return {
    kind: manifest.kind,
    entries: manifest.entries,
    files: manifest.files.map((f) => ({
      path: f.path,
      role: f.role,
      ...(f.reason ? { reason: f.reason } : {}),
      ...(f.problem
        ? {
            problem: {
              reason: f.problem.reason,
              line: f.problem.line,
              column: f.problem.column,
            },
          }
        : {}),
    })),
    packages: manifest.packages.map((p) => ({
      id: p.id,
      name: p.name,
      version: p.version,
      manager: p.manager,
      reason: p.reason,
      dependencies: p.dependencies,
      ...(p.optional ? { optional: true } : {}),
      ...(p.link ? { link: true } : {}),
      ...(p.links ? { links: p.links } : {}),
      ...(p.native ? { native: true } : {}),
    })),
    imports: manifest.imports.map((i) => ({
      specifier: i.specifier,
      file: i.file,
      line: i.line,
      kind: i.kind,
      resolved: i.resolved,
      ...(i.target ? { target: i.target } : {}),
      ...(i.optional ? { optional: true } : {}),
    })),
    unresolved: manifest.unresolved.map((u) => ({
      specifier: u.specifier,
      file: u.file,
      line: u.line,
      reason: u.reason,
      ...(u.optional ? { optional: true } : {}),
      ...(u.package ? { package: u.package } : {}),
    })),
  };
}

describe("scan fixtures", () => {
  it.each(cases)("%s", async (name) => {
    const caseDir = join(casesDir, name);
    const settings = await readCase(caseDir);
    const work = await tempDir(`envpack-case-${name}-`);
    await materialiseCase(caseDir, work, settings);
    const conda = inject("fixtures").conda;
    if (settings.env === "conda" && !conda)
      throw new Error("the Conda fixture was not built");
    const manifest = await scan({
      entries: settings.entries,
      cwd: work,
      env: settings.env === "conda" ? conda?.prefix : undefined,
      generatorVersion: "test",
    });
    const actual = project(manifest);
    const expectedPath = join(caseDir, "expected.json");
    if (process.env.UPDATE_EXPECTED === "1") {
      await writeFile(expectedPath, JSON.stringify(actual, null, 2) + "\n");
    }
    const expected = JSON.parse(
      await readFile(expectedPath, "utf8"),
    ) as unknown;
    expect(actual).toEqual(expected);
  });
});
