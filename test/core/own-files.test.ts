// envpackFile / envpackCodeFile (src/core/own-files.ts): envpack's own files are found from the
// source tree (this test) the same way as from dist/ (the e2e tests run it).

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  envpackCodeFile,
  envpackFile,
  envpackPackageDir,
  envpackPackageJson,
} from "../../src/core/index.js";

const repo = join(import.meta.dirname, "..", "..");

describe("envpack's own files", () => {
  it("finds the package root, runtime/ and the packer's workers", async () => {
    expect(envpackPackageDir()).toBe(repo);
    const json = JSON.parse(
      await readFile(join(repo, "package.json"), "utf8"),
    ) as { version: string };
    expect(envpackPackageJson()).toEqual({
      name: "envpack",
      version: json.version,
    });
    expect(envpackFile("runtime/envpack-run")).toBe(
      join(repo, "runtime", "envpack-run"),
    );
    expect(envpackCodeFile("packer/pack-worker.mjs")).toBe(
      join(repo, "packer", "pack-worker.mjs"),
    );
  });

  it("says a missing file is a broken install", () => {
    expect(() => envpackFile("runtime/no-such-runner")).toThrow(
      /no-such-runner is missing: envpack's install is incomplete/,
    );
  });
});
