// An app file that does not parse fails the build (and scan --strict) instead of a bundle that
// fails when it loads the file.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Failure {
  error: { code: string; message: string };
}

describe("an app file with a syntax error", () => {
  it("build exits 2 with ENVPACK_INPUT_SYNTAX_ERROR at file:line:column; scan --strict too; plain scan records it", async () => {
    const app = await appCopy("hello");
    await writeFile(
      join(app, "src", "greet.ts"),
      "export function greet(name: string) {\n  return `hi ${name`;\n}\n",
    );
    const env = { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") };
    const [built, strict, plain] = await Promise.all([
      envpack(["build", "--json", "src/main.ts"], { cwd: app, env }),
      envpack(["scan", "--json", "--strict", "src/main.ts"], { cwd: app, env }),
      envpack(["scan", "--json", "src/main.ts"], { cwd: app, env }),
    ]);
    for (const run of [built, strict]) {
      expect(run.exitCode).toBe(2);
      const { error } = JSON.parse(run.stdout) as Failure;
      expect(error.code).toBe("ENVPACK_INPUT_SYNTAX_ERROR");
      expect(error.message).toMatch(/^src\/greet\.ts:\d+:\d+: /);
    }
    expect(plain.exitCode).toBe(0);
    const manifest = JSON.parse(plain.stdout) as {
      files: Array<{ path: string; problem?: { reason: string } }>;
    };
    expect(
      manifest.files.find((f) => f.path === "src/greet.ts")?.problem?.reason,
    ).toBe("syntax-error");
  });
});
