// The README lists every error and warning code the code can emit (STYLE §4, §12).

import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..");

/** The string members of `export type NAME = | "…" | "…";` in a core file. */
async function unionMembers(file: string, name: string): Promise<string[]> {
  const text = await readFile(join(repo, "src", "core", file), "utf8");
  const start = text.indexOf(`export type ${name}`);
  expect(start).toBeGreaterThanOrEqual(0);
  // Up to the last member: `";` (comments between members may hold semicolons).
  const union = text
    .slice(start, text.indexOf('";', start) + 1)
    .replace(/\/\*[\s\S]*?\*\//g, "");
  return [...union.matchAll(/"(ENVPACK_[A-Z_]+)"/g)].map((m) => m[1] as string);
}

/** Every TypeScript/JS source of the library, the packer and the runtime. */
async function sources(): Promise<string[]> {
  const out: string[] = [];
  for (const top of ["src", "packer", "runtime"]) {
    const entries = await readdir(join(repo, top), {
      recursive: true,
      withFileTypes: true,
    });
    for (const entry of entries)
      if (entry.isFile() && /\.(ts|mjs|py)$|^envpack-run$/.test(entry.name))
        out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe("README", () => {
  it("documents every error code", async () => {
    const codes = await unionMembers("errors.ts", "ErrorCode");
    expect(codes.length).toBeGreaterThan(10);
    const readme = await readFile(join(repo, "README.md"), "utf8");
    expect(codes.filter((code) => !readme.includes(`\`${code}\``))).toEqual([]);
  });

  it("documents every warning code, and the code emits no warning outside the union", async () => {
    const codes = await unionMembers("events.ts", "WarningCode");
    expect(codes.length).toBeGreaterThanOrEqual(8);
    const readme = await readFile(join(repo, "README.md"), "utf8");
    expect(codes.filter((code) => !readme.includes(`\`${code}\``))).toEqual([]);
    const used = new Set<string>();
    for (const file of await sources())
      for (const match of (await readFile(file, "utf8")).matchAll(
        /ENVPACK_WARN_[A-Z_]*[A-Z]/g,
      ))
        used.add(match[0]);
    expect([...used].filter((code) => !codes.includes(code))).toEqual([]);
  });
});
