// Opens an execution backend by name, as openRegistry opens a registry by URL: the one place that
// knows which backends exist and which options each takes.

import { UsageError, type OnEvent } from "../core/light.js";
import type { ExecBackend } from "./backend.js";
import { LocalBackend, type WorkerSpec } from "./local/local-backend.js";
import { WorkQueueBackend } from "./workqueue/index.js";

/** The backends {@link openBackend} knows. */
export const BACKENDS = ["local", "workqueue"] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Options of {@link openBackend}: each backend reads its own, and refuses another's. */
export interface OpenBackendOptions {
  /** Where workers (local) or the manager keep their files. */
  workDir: string;
  onEvent?: OnEvent | undefined;
  /** local: declared workers modelling a heterogeneous pool (default: this machine). */
  workers?: WorkerSpec[] | undefined;
  /** Module apps in warm runtimes (default true): local processes, or long-lived Work Queue tasks. */
  reuseRuntimes?: boolean | undefined;
  /** workqueue: the TCP port workers connect to; 0 picks a free one. */
  port?: number | undefined;
  /** workqueue: the address to listen on (default 127.0.0.1). */
  host?: string | undefined;
  /** workqueue: a password file, the one workers get with `--password`. */
  password?: string | undefined;
  /** workqueue: the project name advertised to the catalog (workers' `-M NAME`). */
  project?: string | undefined;
  /** workqueue: the catalog server(s), `HOST:PORT[,HOST:PORT]` (default: cctools' own). */
  catalog?: string | undefined;
  /** workqueue: measure and limit tasks with resource_monitor (default true). */
  monitor?: boolean | undefined;
  /** workqueue: short command tasks several to a Work Queue task (default true). */
  batchCommands?: boolean | undefined;
  /** workqueue: the resource_monitor sent to workers (default: this host's); null sends none. */
  resourceMonitor?: string | null | undefined;
  /** workqueue: a silent worker is checked after this long, dropped after as long again (ms). */
  keepaliveMs?: number | undefined;
  /** workqueue: a warm runtime idle this long ends, so its worker can idle out (ms). */
  runtimeIdleMs?: number | undefined;
}

type Opener = (options: OpenBackendOptions) => ExecBackend;

const OPENERS: Record<BackendName, Opener> = {
  local: (options) => {
    refuse("local", options, [
      "port",
      "host",
      "password",
      "project",
      "catalog",
      "monitor",
      "batchCommands",
      "resourceMonitor",
      "keepaliveMs",
      "runtimeIdleMs",
    ]);
    return new LocalBackend({
      workers: options.workers,
      workDir: options.workDir,
      reuseRuntimes: options.reuseRuntimes,
      onEvent: options.onEvent,
    });
  },
  // The Work Queue manager (src/exec/workqueue/): status answers and catalog advertisement
  // (project, catalog) are wired by its own module.
  workqueue: (options) => {
    refuse("workqueue", options, ["workers"]);
    if (options.port === undefined)
      throw new UsageError(
        "ENVPACK_USAGE_BAD_CONFIG",
        'backend "workqueue" needs a port',
        { hint: "Give port: 9123 (or port: 0 to pick a free one)." },
      );
    return new WorkQueueBackend({
      port: options.port,
      host: options.host,
      password: options.password,
      project: options.project,
      catalog: options.catalog,
      reuseRuntimes: options.reuseRuntimes,
      monitor: options.monitor,
      batchCommands: options.batchCommands,
      resourceMonitor: options.resourceMonitor,
      keepaliveMs: options.keepaliveMs,
      runtimeIdleMs: options.runtimeIdleMs,
      onEvent: options.onEvent,
    });
  },
};

/**
 * Opens the backend called `name`.
 * @throws UsageError ENVPACK_USAGE_BAD_CONFIG for an unknown name, an option of another backend,
 *   or a backend's own bad option
 */
export function openBackend(
  name: string,
  options: OpenBackendOptions,
): ExecBackend {
  const opener = Object.hasOwn(OPENERS, name)
    ? OPENERS[name as BackendName]
    : undefined;
  if (opener === undefined)
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `unknown backend ${JSON.stringify(name)}`,
      { hint: `Use one of: ${BACKENDS.map((b) => `"${b}"`).join(", ")}.` },
    );
  return opener(options);
}

function refuse(
  name: BackendName,
  options: OpenBackendOptions,
  keys: Array<keyof OpenBackendOptions>,
): void {
  const given = keys.filter((k) => options[k] !== undefined);
  if (given.length > 0)
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `${given.join(", ")} ${given.length === 1 ? "is not an option" : "are not options"} of backend "${name}"`,
      {
        hint:
          name === "local"
            ? 'Those are for backend: "workqueue".'
            : 'workers are for backend: "local"; Work Queue workers join by themselves.',
      },
    );
}
