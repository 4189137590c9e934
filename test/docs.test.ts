// The README lists every error code the code can throw (STYLE §4).

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..");

describe("README", () => {
  it("documents every error code", async () => {
    const errors = await readFile(
      join(repo, "src", "core", "errors.ts"),
      "utf8",
    );
    const union = errors.slice(
      errors.indexOf("export type ErrorCode"),
      errors.indexOf(";", errors.indexOf("export type ErrorCode")),
    );
    const codes = [...union.matchAll(/"(ENVPACK_[A-Z_]+)"/g)].map((m) => m[1]);
    expect(codes.length).toBeGreaterThan(10);
    const readme = await readFile(join(repo, "README.md"), "utf8");
    expect(codes.filter((code) => !readme.includes(`\`${code}\``))).toEqual([]);
  });
});
