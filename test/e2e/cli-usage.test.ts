// Usage errors found by the argument parser print like every other coded error: `envpack:`,
// `hint:` and `code:` lines in text mode, one JSON document under --json, exit 2.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { BIN, envpack } from "../helpers/cli.js";

describe("usage errors", () => {
  it.each([
    [["scan", "--no-such-flag", "main.ts"], "unknown option", "scan"],
    [["build", "--level", "99", "main.ts"], "--level", "build"],
    [["push"], "missing required argument", "push"],
    [["cache", "rm"], "missing required argument", "cache rm"],
    [["bogus"], "unknown command", ""],
    [[], "no command given", ""],
  ])(
    "envpack %j: exit 2 with message, hint and code lines",
    async (args, what, command) => {
      const run = await envpack(args);
      expect(run.exitCode).toBe(2);
      expect(run.stdout).toBe("");
      const lines = run.stderr.trimEnd().split("\n");
      expect(lines.slice(-3)).toEqual([
        expect.stringMatching(new RegExp(`^envpack: .*${what}`)),
        `hint: Run \`envpack ${command === "" ? "" : `${command} `}--help\` for usage.`,
        "code: ENVPACK_USAGE_BAD_ARGUMENT",
      ]);
      expect(run.stderr).not.toMatch(/^error: /m);
    },
  );

  it("prints only the JSON document under --json", async () => {
    const run = await envpack(["--json", "scan", "--no-such-flag", "main.ts"]);
    expect(run.exitCode).toBe(2);
    expect(JSON.parse(run.stdout)).toEqual({
      ok: false,
      error: {
        code: "ENVPACK_USAGE_BAD_ARGUMENT",
        message: "unknown option '--no-such-flag'",
        hint: "Run `envpack scan --help` for usage.",
      },
    });
    expect(run.stderr).toBe("");
  });
});

describe("a reader that goes away", () => {
  it("ends with 141 and no stack trace when stdout's pipe is closed", async () => {
    // The read end is closed before the process starts: every write to stdout fails with EPIPE.
    const child = spawn(process.execPath, [BIN, "build", "--help"], {
      env: { ...process.env, CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "close")) as [number | null];
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(code).toBe(141);
  });
});
