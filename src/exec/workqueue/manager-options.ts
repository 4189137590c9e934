// The Work Queue manager's options: their type, their checks, and the files they name (the
// password, resource_monitor on PATH).

import { constants as fsConstants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { UsageError, isNotFound, type OnEvent } from "../../core/index.js";

/** Options of {@link WorkQueueBackend}. */
export interface WorkQueueOptions {
  /** TCP port to listen on; 0 picks a free one (see {@link WorkQueueBackend.address}). */
  port: number;
  /** Address to listen on (default 127.0.0.1; the protocol is plain TCP). */
  host?: string | undefined;
  /** Advertise to a catalog under this name (workers' and factories' `-M NAME`). */
  project?: string | undefined;
  /** The catalog server(s), `HOST:PORT[,HOST:PORT]` (default cctools' own); with `project`. */
  catalog?: string | undefined;
  /** A password file, the same one workers get with `--password` (its exact bytes). */
  password?: string | undefined;
  /**
   * Apps (module and Python) in warm runtimes on the workers (default true): a long-lived Work
   * Queue task per slot that runs many tasks; false: a node or python process per task.
   */
  reuseRuntimes?: boolean | undefined;
  /** A warm runtime idle this long ends, so its worker can idle out (default 10 s). */
  runtimeIdleMs?: number | undefined;
  /**
   * Short command tasks in batches (default true): once a category's command tasks are seen to
   * run for a second or less, those placed on a worker beyond its slots go out several to one
   * Work Queue task, run one after another, each with its own result as it ends.
   */
  batchCommands?: boolean | undefined;
  /** Measure and limit tasks with resource_monitor (default true). */
  monitor?: boolean | undefined;
  /**
   * The resource_monitor shipped to workers (default: the one on this host's PATH, if any); null
   * ships none (workers use their own, if they have one).
   */
  resourceMonitor?: string | null | undefined;
  /**
   * A worker silent this long gets a `check`; one that stays silent as long again is dropped
   * (its tasks run elsewhere). Default 30 s. A SIGKILLed worker's connection can stay open:
   * its orphaned tasks inherit the socket.
   */
  keepaliveMs?: number | undefined;
  onEvent?: OnEvent | undefined;
}

/**
 * Checks the options that need no I/O.
 * @throws UsageError ENVPACK_USAGE_BAD_CONFIG naming the option, the value and what is allowed
 */
export function checkOptions(options: WorkQueueOptions): void {
  if (
    !Number.isInteger(options.port) ||
    options.port < 0 ||
    options.port > 65535
  )
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `port must be an integer from 0 to 65535, got ${JSON.stringify(options.port)}`,
      { hint: "Give port: 0 to pick a free one." },
    );
  mustBeMs("keepaliveMs", options.keepaliveMs, 30_000);
  mustBeMs("runtimeIdleMs", options.runtimeIdleMs, 10_000);
  for (const key of ["monitor", "batchCommands"] as const)
    if (options[key] !== undefined && typeof options[key] !== "boolean")
      throw new UsageError(
        "ENVPACK_USAGE_BAD_CONFIG",
        `${key} must be true or false, got ${JSON.stringify(options[key])}`,
      );
}

/**
 * A duration option: undefined (its default) or milliseconds above 0.
 * @throws UsageError ENVPACK_USAGE_BAD_CONFIG otherwise
 */
function mustBeMs(name: string, value: unknown, fallback: number): void {
  if (
    value !== undefined &&
    (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
  )
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `${name} must be a number of milliseconds above 0, got ${JSON.stringify(value)}`,
      { hint: `Leave it out for the default (${fallback}).` },
    );
}

/**
 * The password file's exact bytes: the worker hashes the whole file, its final newline included
 * (§3), so nothing is trimmed.
 * @throws UsageError ENVPACK_USAGE_BAD_CONFIG when it cannot be read or is empty
 */
export async function readPassword(path: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (error) {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `cannot read the password file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      {
        hint: "Give password: the path of the file the workers get with --password.",
        cause: error,
      },
    );
  }
  if (data.length === 0)
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `the password file ${path} is empty`,
      {
        hint: "Write the password into the file (the workers get the same file with --password).",
      },
    );
  return data;
}

/** An executable on this host's PATH, or undefined. */
export async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch (error) {
      // Not there, or there but not executable: look further along PATH.
      if (
        !isNotFound(error) &&
        (error as NodeJS.ErrnoException).code !== "EACCES"
      )
        throw error;
    }
  }
  return undefined;
}
