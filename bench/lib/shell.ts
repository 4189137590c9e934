// Runs a shell pipeline (bash, pipefail) for the peer tools the benchmarks compare against.

import { execa } from "execa";

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'"'"'`)}'`;
}

/**
 * Runs `pipeline` with `bash -c` under `set -eo pipefail`, so a failure anywhere in the pipe
 * fails the run; throws with the command and stderr tail when it does.
 */
export async function runPipeline(
  pipeline: string,
  options: { cwd?: string } = {},
): Promise<void> {
  const result = await execa("bash", ["-c", `set -eo pipefail; ${pipeline}`], {
    cwd: options.cwd,
    reject: false,
    stdin: "ignore",
  });
  if (result.exitCode !== 0) {
    const tail = String(result.stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(
      `pipeline failed (exit ${result.exitCode}): ${pipeline}\n${tail}`,
    );
  }
}

/** Fails with a clear message when a peer tool is missing from PATH. */
export async function requireTools(tools: string[]): Promise<void> {
  for (const tool of tools) {
    const found = await execa(
      "bash",
      ["-c", `command -v ${shellQuote(tool)}`],
      {
        reject: false,
      },
    );
    if (found.exitCode !== 0)
      throw new Error(
        `${tool} is not on PATH; the benchmark compares against it`,
      );
  }
}
