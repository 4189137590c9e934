// Runs the built envpack binary (npm test builds it first) as a user would.

import { join } from "node:path";
import { execa } from "execa";

export const BIN = join(
  import.meta.dirname,
  "..",
  "..",
  "dist",
  "src",
  "cli",
  "main.js",
);

/** Result of one CLI run; never throws on a non-zero exit. */
export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs `envpack ARGS` in `cwd` with CI set (plain, non-TTY output). */
export async function envpack(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  const result = await execa(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { CI: "true", ...options.env },
    reject: false,
    stdin: "ignore",
  });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout),
    stderr: String(result.stderr),
  };
}
