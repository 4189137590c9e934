// Runs an app once on this machine with the trace hooks loaded, and returns what it loaded and opened.

import { existsSync } from "node:fs";
import { mkdtemp, readFile, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { InputError, isNotFound, sanitizeText } from "../../core/index.js";

/** Options of {@link runTraced}. */
export interface RunTracedOptions {
  /** Where the command runs. */
  cwd: string;
  signal?: AbortSignal | undefined;
}

/**
 * Runs `command` (argv; a Node program, e.g. `node src/main.js`) with envpack's loader hooks and
 * fs recording preloaded through NODE_OPTIONS, and returns the real paths of every module it
 * loaded and file it opened or listed, sorted. The trace log lives in a temporary directory
 * outside the project and the cache, removed before this returns.
 * @throws InputError ENVPACK_INPUT_TRACE_FAILED when the command cannot start or exits non-zero
 */
export async function runTraced(
  command: string[],
  options: RunTracedOptions,
): Promise<string[]> {
  const [file, ...args] = command;
  if (file === undefined) throw new Error("runTraced needs a command");
  const dir = await mkdtemp(join(tmpdir(), "envpack-trace-"));
  const out = join(dir, "trace.log");
  try {
    const run = await execa(file, args, {
      cwd: options.cwd,
      env: {
        ENVPACK_TRACE_OUT: out,
        NODE_OPTIONS: [process.env["NODE_OPTIONS"], `--import=${registerUrl()}`]
          .filter(Boolean)
          .join(" "),
      },
      stdin: "ignore",
      reject: false,
      cancelSignal: options.signal,
    });
    if (run.failed) {
      const tail = sanitizeText(String(run.stderr), { multiline: true })
        .split("\n")
        .slice(-8)
        .join("\n");
      throw new InputError(
        "ENVPACK_INPUT_TRACE_FAILED",
        `the traced command failed (${run.exitCode === undefined ? "did not start" : `exit ${run.exitCode}`}): ${command.join(" ")}${tail ? `\n${tail}` : ""}`,
        {
          hint: "Give a command that runs the app to completion here, e.g. `--trace -- node src/main.js`.",
          details: { command, exitCode: run.exitCode ?? null },
        },
      );
    }
    let log = "";
    try {
      log = await readFile(out, "utf8");
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const paths = new Set<string>();
    for (const line of new Set(log.split("\n"))) {
      if (line === "") continue;
      try {
        paths.add(await realpath(line));
      } catch (error) {
        if (
          !isNotFound(error) &&
          (error as NodeJS.ErrnoException).code !== "ENOTDIR"
        )
          throw error;
      }
    }
    return [...paths].sort();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The compiled trace-register module beside this one (under `dist/`). */
function registerUrl(): string {
  const url = new URL("./trace-register.js", import.meta.url);
  if (!existsSync(fileURLToPath(url)))
    throw new Error(`${fileURLToPath(url)} is missing: run \`npm run build\``);
  return url.href;
}
