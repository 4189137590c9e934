// Runs an app once on this machine with the trace hooks loaded, and returns what it loaded and opened.

import {
  mkdir,
  mkdtemp,
  readFile,
  realpath,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import {
  InputError,
  envpackCodeFile,
  isNotFound,
  sanitizeText,
} from "../../core/light.js";
import type { TraceLog, TracedImport } from "../scan-result.js";
import { PYTHON_TRACE_HOOK } from "./python-trace-hook.js";

/** Options of {@link runTraced}. */
export interface RunTracedOptions {
  /** Where the command runs. */
  cwd: string;
  /** What the command runs: a Node program (default) or a Python one. */
  runtime?: "node" | "python" | undefined;
  signal?: AbortSignal | undefined;
}

const HEADER = "#envpack-trace";

/**
 * Runs `command` (argv) with envpack's hooks and returns the real paths of every module it loaded
 * and file it opened (or, Node, listed), sorted; a Python run also gives the directories the app
 * listed and the modules it imported with their calling lines. A Node program (`node src/main.js`) gets the loader hooks
 * and fs recording through NODE_OPTIONS; a Python one (`python app.py`) an audit hook through a
 * `sitecustomize` first on PYTHONPATH, with bytecode writing off so that imports leave no
 * `__pycache__` in the project. The hook and the log live in a temporary directory outside the
 * project and the cache, removed before this returns.
 * @throws InputError ENVPACK_INPUT_TRACE_FAILED when the command cannot start, exits non-zero, or
 *   (Python) never loaded the hook
 */
export async function runTraced(
  command: string[],
  options: RunTracedOptions,
): Promise<TraceLog> {
  const [file, ...args] = command;
  if (file === undefined) throw new Error("runTraced needs a command");
  const dir = await mkdtemp(join(tmpdir(), "envpack-trace-"));
  const out = join(dir, "trace.log");
  try {
    const python = options.runtime === "python";
    const run = await execa(file, args, {
      cwd: options.cwd,
      env: python
        ? await pythonEnv(dir, out)
        : {
            ENVPACK_TRACE_OUT: out,
            NODE_OPTIONS: [
              process.env["NODE_OPTIONS"],
              `--import=${registerUrl()}`,
            ]
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
    if (python && !log.startsWith(HEADER)) {
      throw new InputError(
        "ENVPACK_INPUT_TRACE_FAILED",
        `the traced command ran no Python that loaded the trace hook: ${command.join(" ")}`,
        {
          hint: "Run the app with the environment's python and without -I, -E or -S (they ignore PYTHONPATH or skip site), e.g. `--trace -- python app.py`.",
          details: { command },
        },
      );
    }
    return await parseTraceLog(log, options.cwd);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The real path of `path` (relative to `cwd`), or undefined when it is gone. */
async function realPathOf(
  cwd: string,
  path: string,
): Promise<string | undefined> {
  try {
    return await realpath(resolve(cwd, path));
  } catch (error) {
    if (
      !isNotFound(error) &&
      (error as NodeJS.ErrnoException).code !== "ENOTDIR"
    )
      throw error;
    return undefined;
  }
}

/** The hooks' log: plain paths, and the Python hook's `#listdir` and `#import` records. */
async function parseTraceLog(log: string, cwd: string): Promise<TraceLog> {
  const paths = new Set<string>();
  const listed = new Set<string>();
  const imports = new Map<string, TracedImport>();
  const sources = new Map<string, Promise<string | undefined>>();
  for (const line of new Set(log.split("\n"))) {
    if (line === "" || line === HEADER) continue;
    const [kind, ...fields] = line.split("\t");
    if (kind === "#listdir" && fields[0] !== undefined) {
      const dir = await realPathOf(cwd, fields[0]);
      if (dir !== undefined) listed.add(dir);
    } else if (kind === "#import" && fields.length === 3) {
      const [module, from, at] = fields as [string, string, string];
      let source = sources.get(from);
      if (source === undefined)
        sources.set(from, (source = realPathOf(cwd, from)));
      const file = await source;
      if (file !== undefined)
        imports.set(line, { module, file, line: Number(at) });
    } else {
      const path = await realPathOf(cwd, line);
      if (path !== undefined) paths.add(path);
    }
  }
  return {
    paths: [...paths].sort(),
    listed: [...listed].sort(),
    imports: [...imports.values()],
  };
}

/** A Python's environment for a traced run: the hook first on PYTHONPATH, no bytecode written. */
async function pythonEnv(
  dir: string,
  out: string,
): Promise<Record<string, string>> {
  const boot = join(dir, "boot");
  await mkdir(boot);
  await writeFile(join(boot, "sitecustomize.py"), PYTHON_TRACE_HOOK);
  return {
    ENVPACK_TRACE_OUT: out,
    PYTHONPATH: [boot, process.env["PYTHONPATH"]]
      .filter(Boolean)
      .join(delimiter),
    PYTHONDONTWRITEBYTECODE: "1",
  };
}

/**
 * The compiled trace-register module, `dist/src/scan/trace/trace-register.js`: a file of its own
 * for `--import`, found from the code root (the CLI bundle holds this module, not beside it).
 */
function registerUrl(): string {
  return pathToFileURL(envpackCodeFile("src/scan/trace/trace-register.js"))
    .href;
}
