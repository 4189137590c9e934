// The executor: apps called like async functions become tasks, fitted to workers by their
// resources, measured, labelled (autolabel), retried, and — with `pack` — run inside their bundle.

import { rm } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { tmpdir } from "node:os";
import { basename, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  TaskError,
  UsageError,
  isEnvpackError,
  parseResourceSpec,
  type OnEvent,
  type ResourceSpec,
  type TaskBundle,
  type TaskPayload,
  type UnresolvedEntry,
} from "../core/light.js";
import {
  TaskEngine,
  openBackend,
  taskError,
  type AutolabelMode,
  type CategorySummary,
  type ExecBackend,
  type WorkerSpec,
} from "../exec/index.js";
import { build, type BuildOptions } from "./build.js";
import { holdCache, type CacheHold } from "./cache-hold.js";
import {
  checkJson,
  checkWorker,
  commandPayload,
  compileModuleApp,
  isTypeScript,
  mustExist,
} from "./executor-apps.js";
import { loadConfig, loadRunEnvironment } from "./load-config.js";
import { RunLog } from "./run-log.js";
import { RunStatus } from "./run-status.js";
import { envpackVersion } from "./version.js";
import { scan, strictFindings } from "./scan-app.js";

export type { WorkerSpec, CategorySummary, AutolabelMode };

/** Options of {@link Executor} every backend takes. */
export interface CommonExecutorOptions {
  /** Scan, build and ship each app's environment; tasks run inside its bundle. */
  pack?: boolean | undefined;
  /** Measure tasks and choose their labels (Work Queue's autolabel). */
  autolabel?: boolean | undefined;
  /** Tasks measured on a whole worker before a category gets a label (default 1, as Parsl). */
  autolabelWindow?: number | undefined;
  /** `max` (the largest peak seen, default) or `throughput` (the label fitting most tasks per worker). */
  autolabelMode?: AutolabelMode | undefined;
  /** One category per app (default true); false: all apps share one. */
  autocategory?: boolean | undefined;
  /**
   * Runs again after a crash (default 0). Over-label retries do not count, nor do tasks whose
   * worker was lost: those always run again elsewhere.
   */
  maxRetries?: number | undefined;
  /** Module apps in warm runtime processes (default true), or a fresh process per task. */
  reuseRuntimes?: boolean | undefined;
  /** The bundle cache (default as the CLI's: `$ENVPACK_CACHE_DIR` or `~/.cache/envpack`). */
  cacheDir?: string | undefined;
  /** Where local workers keep sandboxes and unpacked bundles (default: a temp directory). */
  workDir?: string | undefined;
  onEvent?: OnEvent | undefined;
  /**
   * A run log: every event appended to this file as one JSON line (what `envpack report` reads),
   * starting with the run's options and then its workers and apps as they appear. Default
   * `$ENVPACK_RUN_LOG`, else none.
   */
  log?: string | undefined;
  /**
   * A live status on stderr: tasks waiting, running, done and failed, workers and throughput,
   * redrawn in place on a terminal, a plain line every 10 s otherwise (or when `CI` is set).
   * Default: on when a run log is written.
   */
  progress?: boolean | undefined;
  /** Aborting cancels every queued and running task. */
  signal?: AbortSignal | undefined;
}

/** Tasks run on this machine (the default backend). */
export interface LocalExecutorOptions extends CommonExecutorOptions {
  backend?: "local" | undefined;
  /** Local workers to model a heterogeneous pool; default one worker of this machine's size. */
  workers?: WorkerSpec[] | undefined;
}

/**
 * Tasks run on Work Queue workers (`work_queue_worker HOST PORT`) that join and leave at any
 * time; calls made before any worker joins wait for one.
 */
export interface WorkQueueExecutorOptions extends CommonExecutorOptions {
  backend: "workqueue";
  /** The TCP port workers connect to; 0 picks a free one (see `listening()`). */
  port: number;
  /** The address to listen on (default 127.0.0.1: the protocol is plain TCP). */
  host?: string | undefined;
  /** A password file, the one workers get with `--password`. */
  password?: string | undefined;
  /** Advertise to a catalog server under this name (workers' and factories' `-M NAME`). */
  project?: string | undefined;
  /** The catalog server(s), `HOST:PORT[,HOST:PORT]` (default: cctools' own). */
  catalog?: string | undefined;
  /**
   * Measure and limit every task with `resource_monitor` (default true): memory and disk over
   * the label end a task as over-resources, and autolabel learns from the peaks. false runs
   * tasks bare: no measurement, no enforcement, the least overhead per task.
   */
  monitor?: boolean | undefined;
  /**
   * Short command tasks in batches (default true): once a category's command tasks are seen to
   * run for a second or less, the ones placed on a worker beyond its free slots go out up to 16
   * to one Work Queue task, which runs them one after another, each as its own process with its
   * own stdout, stderr, exit code and (with `monitor`) resource_monitor, and reports each as it
   * ends. A worker lost mid-batch loses only the tasks not yet reported. false: one Work Queue
   * task per task.
   */
  batchCommands?: boolean | undefined;
  /**
   * The `resource_monitor` sent to workers (default: the one on this machine's PATH, if any);
   * null sends none, and workers use their own if they have one.
   */
  resourceMonitor?: string | null | undefined;
  /**
   * A worker silent this long (ms) is sent a `check`; one silent as long again is dropped and
   * its tasks run elsewhere (default 30000).
   */
  keepaliveMs?: number | undefined;
  /**
   * A warm runtime (reuseRuntimes) idle this long (ms) ends, so its worker's own idle timeout can
   * release the worker (default 10000).
   */
  runtimeIdleMs?: number | undefined;
}

/** Options of {@link Executor}: `backend` says which others apply. */
export type ExecutorOptions = LocalExecutorOptions | WorkQueueExecutorOptions;

/** Every backend's options at once, as read (each backend refuses another's). */
type AnyExecutorOptions = CommonExecutorOptions & {
  backend?: string | undefined;
  workers?: WorkerSpec[] | undefined;
  port?: number | undefined;
  host?: string | undefined;
  password?: string | undefined;
  project?: string | undefined;
  catalog?: string | undefined;
  monitor?: boolean | undefined;
  batchCommands?: boolean | undefined;
  resourceMonitor?: string | null | undefined;
  keepaliveMs?: number | undefined;
  runtimeIdleMs?: number | undefined;
};

/** Options of an app. */
export interface AppOptions {
  /** Default resources of its calls: `cores`, `memory` (MB), `disk` (MB), `gpus`. */
  resources?: ResourceSpec | undefined;
  /** Its category name under autocategory (default: the export or file name). */
  name?: string | undefined;
  /**
   * With `pack`: installed package names or app-file globs its bundle ships too, as `--include`
   * (for plugins loaded by names no analysis sees).
   */
  include?: string[] | undefined;
}

/** A callable app: each call is a task. */
export interface App<A extends unknown[], R> {
  (...args: A): Promise<R>;
  /** The same app with other resources for the calls made through it. */
  with(options: { resources: ResourceSpec }): App<A, R>;
  readonly appName: string;
}

/** What a command app resolves with. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
}

interface AppDef {
  name: string;
  kind: TaskPayload["kind"];
  /** Absolute path of the module or .py file (command apps: none). */
  file?: string;
  exportName?: string;
  command?: string[] | string;
  /** Conda prefix of a Python app. */
  env?: string;
  /** With pack: what its bundle ships besides what the scan finds. */
  include?: string[];
}

/**
 * Runs apps as tasks on workers. `await executor.shutdown()` when done.
 * @throws (from app calls) UsageError ENVPACK_USAGE_BAD_RESOURCES / ENVPACK_USAGE_BAD_ARGUMENT at the
 *   call, TaskError ENVPACK_TASK_FAILED / _TOO_LARGE / _OVER_RESOURCES / _CANCELED, and the build's
 *   errors under `pack`
 */
export class Executor {
  readonly #options: ExecutorOptions;
  readonly #engine: TaskEngine;
  readonly #backend: ExecBackend & { runtimePids?(): number[] };
  readonly #started: Promise<void>;
  /** Calls not yet settled (being prepared, queued, running, or having their failure explained). */
  readonly #calls = new Set<Promise<unknown>>();
  readonly #bundles = new Map<string, Promise<{ bundle: TaskBundle }>>();
  readonly #compiled = new Map<string, Promise<string>>();
  readonly #findings = new Map<
    string,
    Promise<UnresolvedEntry[] | undefined>
  >();
  readonly #workDir: string;
  readonly #log: RunLog | undefined;
  readonly #status: RunStatus | undefined;
  readonly #onEvent: OnEvent | undefined;
  #closed = false;
  #canceled = false;
  /** With pack: held from the first build to shutdown, so no `cache gc` removes a bundle it ships. */
  #cacheHold: Promise<CacheHold> | undefined;

  constructor(options: ExecutorOptions = {}) {
    const given = options as AnyExecutorOptions;
    const name = given.backend ?? "local";
    const window = options.autolabelWindow ?? 1;
    if (!Number.isInteger(window) || window < 1)
      throw new UsageError(
        "ENVPACK_USAGE_BAD_CONFIG",
        `autolabelWindow must be an integer ≥ 1, got ${window}`,
      );
    const mode = options.autolabelMode ?? "max";
    if (mode !== "max" && mode !== "throughput")
      throw new UsageError(
        "ENVPACK_USAGE_BAD_CONFIG",
        `autolabelMode must be "max" or "throughput", got ${JSON.stringify(mode)}`,
      );
    const retries = options.maxRetries ?? 0;
    if (!Number.isInteger(retries) || retries < 0)
      throw new UsageError(
        "ENVPACK_USAGE_BAD_CONFIG",
        `maxRetries must be an integer ≥ 0, got ${JSON.stringify(retries)}`,
      );
    const ids = new Set<string>();
    for (const [i, w] of (given.workers ?? []).entries()) {
      checkWorker(w, i);
      if (w.id !== undefined && ids.has(w.id))
        throw new UsageError(
          "ENVPACK_USAGE_BAD_RESOURCES",
          `workers[${i}]: the id ${JSON.stringify(w.id)} is taken by another worker`,
        );
      if (w.id !== undefined) ids.add(w.id);
    }
    this.#options = options;
    this.#workDir =
      options.workDir ??
      join(
        tmpdir(),
        `envpack-executor-${process.pid}-${Date.now().toString(36)}`,
      );
    const environment = loadRunEnvironment();
    const logPath = options.log ?? environment.runLog;
    this.#log =
      logPath === undefined
        ? undefined
        : new RunLog(resolve(logPath), {
            backend: name,
            envpack: envpackVersion(),
            pid: process.pid,
            options: loggedOptions(given),
          });
    this.#status =
      (options.progress ?? this.#log !== undefined)
        ? new RunStatus(progressOutput(), {
            interactive: progressOutput().isTTY === true && !environment.ci,
          })
        : undefined;
    const log = this.#log;
    const status = this.#status;
    const listener = options.onEvent;
    this.#onEvent =
      log === undefined && status === undefined
        ? listener
        : (event) => {
            log?.write(event);
            status?.onEvent(event);
            listener?.(event);
          };
    this.#backend = this.#openBackend(name, {
      workDir: this.#workDir,
      onEvent: this.#onEvent,
      workers: given.workers,
      reuseRuntimes: options.reuseRuntimes,
      port: given.port,
      host: given.host,
      password: given.password,
      project: given.project,
      catalog: given.catalog,
      monitor: given.monitor,
      batchCommands: given.batchCommands,
      resourceMonitor: given.resourceMonitor,
      keepaliveMs: given.keepaliveMs,
      runtimeIdleMs: given.runtimeIdleMs,
    });
    this.#engine = new TaskEngine({
      backend: this.#backend,
      autolabel: options.autolabel,
      autolabelWindow: window,
      autolabelMode: mode,
      maxRetries: retries,
      onEvent: this.#onEvent,
    });
    this.#started = this.#engine.start();
    // Until a call awaits it, a failed start must not be an unhandled rejection.
    this.#started.catch(() => {});
    if (options.signal?.aborted) void this.shutdown({ cancel: true });
    else
      options.signal?.addEventListener(
        "abort",
        () => void this.shutdown({ cancel: true }),
        { once: true },
      );
  }

  /** Opens the backend; when it refuses its options, the log and status opened for it are closed. */
  #openBackend(
    name: string,
    options: Parameters<typeof openBackend>[1],
  ): ReturnType<typeof openBackend> {
    try {
      return openBackend(name, options);
    } catch (error) {
      this.#status?.dispose();
      this.#log?.close({ error: isEnvpackError(error) ? error.code : "bug" });
      throw error;
    }
  }

  /**
   * Resolves once the backend is ready for workers: a Work Queue manager's `{ host, port }`
   * (`work_queue_worker HOST PORT`), or `{}` for the local backend (at once: no port).
   * @throws UsageError ENVPACK_USAGE_BAD_CONFIG when the backend cannot start (a port in use)
   */
  async listening(): Promise<{ host?: string; port?: number }> {
    await this.#started;
    const address = this.#engine.address();
    return address === undefined ? {} : { ...address };
  }

  /**
   * A module app: `exportName` of the TS/JS module at `module` (a path or file: URL).
   * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND (no such file), UsageError
   *   ENVPACK_USAGE_BAD_RESOURCES
   */
  app<A extends unknown[] = unknown[], R = unknown>(
    module: string | URL,
    exportName: string,
    options: AppOptions = {},
  ): App<A, R> {
    const file =
      typeof module === "string" && !module.startsWith("file:")
        ? resolve(module)
        : fileURLToPath(module);
    mustExist(file, `app ${exportName}`);
    return this.#define<A, R>(
      {
        name: options.name ?? `${basename(file, extname(file))}.${exportName}`,
        kind: "module",
        file,
        exportName,
        ...(options.include ? { include: options.include } : {}),
      },
      parseResourceSpec(options.resources, `app ${exportName}`),
    );
  }

  /**
   * A command app (Parsl's bash app): argv run without a shell (call arguments are appended), or
   * one shell line run by /bin/sh (call arguments are its `$1`…). Resolves with
   * `{ exitCode, stdout }`; a non-zero exit rejects with a TaskError.
   */
  command(
    command: string[] | string,
    options: AppOptions = {},
  ): App<string[], CommandResult> {
    if (Array.isArray(command) ? command.length === 0 : command.trim() === "")
      throw new UsageError("ENVPACK_USAGE_BAD_ARGUMENT", "an empty command");
    return this.#define<string[], CommandResult>(
      {
        name:
          options.name ??
          basename(
            Array.isArray(command)
              ? (command[0] as string)
              : (command.split(" ")[0] ?? "sh"),
          ),
        kind: "command",
        command,
      },
      parseResourceSpec(options.resources, "command"),
    );
  }

  /**
   * A Python app: `functionName` of the `.py` file, run by the Conda prefix `env`'s python (or
   * python3 on PATH). With `pack`, `include` (distribution names, globs relative to the project
   * directory) ships in its bundle too, as for {@link Executor.app}.
   * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND (no such file), UsageError
   *   ENVPACK_USAGE_BAD_RESOURCES
   */
  pythonApp<A extends unknown[] = unknown[], R = unknown>(
    file: string,
    functionName: string,
    options: AppOptions & { env?: string | undefined } = {},
  ): App<A, R> {
    const path = resolve(file);
    mustExist(path, `python app ${functionName}`);
    return this.#define<A, R>(
      {
        name: options.name ?? `${basename(path, ".py")}.${functionName}`,
        kind: "python",
        file: path,
        exportName: functionName,
        env: options.env,
        ...(options.include ? { include: options.include } : {}),
      },
      parseResourceSpec(options.resources, `python app ${functionName}`),
    );
  }

  /** Per category: samples, the label in use and why, peaks, over-label retries. */
  summary(): CategorySummary[] {
    return this.#engine.summary();
  }

  /**
   * Waits for every task to end (or, with `cancel`, cancels them) and stops every process the
   * executor started.
   */
  async shutdown(options: { cancel?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (options.cancel) {
      this.#canceled = true;
      this.#engine.cancel();
    }
    // Calls still compiling or building become tasks (or, canceled, errors) before the backend stops.
    while (this.#calls.size > 0) await Promise.allSettled([...this.#calls]);
    await this.#engine.close();
    const hold = await this.#cacheHold?.then(
      (held) => held,
      () => undefined,
    );
    await hold?.release();
    // A work directory the executor chose is its own to remove.
    if (this.#options.workDir === undefined)
      await rm(this.#workDir, { recursive: true, force: true });
    this.#status?.stop();
    this.#log?.close({ counts: this.#engine.counts() });
    if (this.#log?.failure !== undefined) throw this.#log.failure;
  }

  /** An app made by app(), command() or pythonApp(): announced once (`with` makes variants). */
  #define<A extends unknown[], R>(
    def: AppDef,
    resources: ResourceSpec,
  ): App<A, R> {
    this.#onEvent?.({
      type: "app:defined",
      app: def.name,
      kind: def.kind,
      resources,
    });
    return this.#makeApp<A, R>(def, resources);
  }

  #makeApp<A extends unknown[], R>(
    def: AppDef,
    resources: ResourceSpec,
  ): App<A, R> {
    const call = ((...args: A) =>
      this.#track(this.#submit(def, args, resources))) as unknown as App<A, R>;
    Object.defineProperty(call, "appName", { value: def.name });
    call.with = (options) =>
      this.#makeApp<A, R>(
        def,
        parseResourceSpec(options.resources, `${def.name}.with`),
      );
    return call;
  }

  /** A call in flight until it settles: shutdown waits for it. */
  #track<T>(call: Promise<T>): Promise<T> {
    this.#calls.add(call);
    const forget = () => this.#calls.delete(call);
    call.then(forget, forget);
    return call;
  }

  async #submit(
    def: AppDef,
    args: unknown[],
    declared: ResourceSpec,
  ): Promise<unknown> {
    if (this.#canceled) throw canceledBefore(def.name);
    if (this.#closed)
      throw new UsageError(
        "ENVPACK_USAGE_BAD_ARGUMENT",
        `${def.name}: the executor is shut down`,
      );
    checkJson(args, def.name);
    await this.#started;
    const payload = await this.#payload(def, args);
    // Command apps run the worker's own commands: there is no module to pack.
    const bundle =
      this.#options.pack && def.kind !== "command"
        ? (await this.#bundleOf(def)).bundle
        : undefined;
    if (this.#canceled) throw canceledBefore(def.name);
    const result = await this.#engine.submit({
      name: def.name,
      category: this.#options.autocategory === false ? "default" : def.name,
      payload,
      resources: declared,
      bundle,
    });
    if (result.ok) return result.value;
    if (
      this.#options.pack &&
      MISSING_IMPORT.test(result.error?.message ?? "")
    ) {
      // The bundle lacks something the app imports: the scan's findings say what and where.
      // The findings are extra: if scanning fails, the task's own failure is still its error.
      const unresolved = await this.#findingsOf(def).catch(() => undefined);
      if (unresolved !== undefined && unresolved.length > 0)
        throw taskError(def.name, result.id, result.reason, result, {
          hint: `The scan found ${unresolved.length} unresolved import${unresolved.length === 1 ? "" : "s"} (first: '${unresolved[0]?.specifier}' at ${unresolved[0]?.file}:${unresolved[0]?.line}): install ${unresolved.length === 1 ? "it" : "them"} where the app resolves its packages, then call it again in a new Executor.`,
          details: { unresolved },
        });
      if (unresolved !== undefined)
        throw taskError(def.name, result.id, result.reason, result, {
          details: { unresolved },
        });
    }
    throw taskError(def.name, result.id, result.reason, result);
  }

  /** The scan's unresolved imports of a packed app (scanned again once, only after a failure). */
  #findingsOf(def: AppDef): Promise<UnresolvedEntry[] | undefined> {
    const key = `${def.file}\0${def.env ?? ""}\0${(def.include ?? []).join("\0")}`;
    let pending = this.#findings.get(key);
    if (pending === undefined) {
      const config = loadConfig({
        cacheDir: this.#options.cacheDir,
        env: def.env,
      });
      pending = scan({
        entries: [def.file as string],
        env: def.kind === "python" ? config.env : undefined,
        include: def.include,
      }).then(
        (manifest) => strictFindings(manifest.unresolved),
        (error: unknown) => {
          // The build scanned the same files without an error: only a changed file fails here.
          if (isEnvpackError(error)) return undefined;
          throw error;
        },
      );
      this.#findings.set(key, pending);
    }
    return pending;
  }

  /** The task payload for a call: module paths compiled or placed inside the bundle. */
  async #payload(def: AppDef, args: unknown[]): Promise<TaskPayload> {
    if (def.kind === "command")
      return commandPayload(def.command as string[] | string, args, def.name);
    if (def.kind === "python")
      return {
        kind: "python",
        file: this.#options.pack ? "" : (def.file as string),
        functionName: def.exportName as string,
        args,
      };
    return {
      kind: "module",
      module: this.#options.pack
        ? ""
        : await this.#runnable(def.file as string),
      exportName: def.exportName as string,
      args,
    };
  }

  /** A module the host's node can import (TypeScript compiled once per file). */
  #runnable(file: string): Promise<string> {
    if (!isTypeScript(file)) return Promise.resolve(file);
    let pending = this.#compiled.get(file);
    if (pending === undefined) {
      pending = compileModuleApp(file, join(this.#workDir, "compiled"));
      this.#compiled.set(file, pending);
    }
    return pending;
  }

  /** A build inside the executor's hold on the cache (taken by the first). */
  async #build(options: BuildOptions) {
    this.#cacheHold ??= holdCache(options.cacheDir, options.signal);
    await this.#cacheHold;
    return build(options);
  }

  /** Scans and builds an app's bundle once (a cache hit after the first time). */
  #bundleOf(def: AppDef): Promise<{ bundle: TaskBundle }> {
    // Apps of one file with other includes have other bundles.
    const key = `${def.file}\0${def.env ?? ""}\0${(def.include ?? []).join("\0")}`;
    let pending = this.#bundles.get(key);
    if (pending === undefined) {
      const config = loadConfig({
        cacheDir: this.#options.cacheDir,
        env: def.env,
      });
      const began = performance.now();
      pending = this.#build({
        entries: [def.file as string],
        env: def.kind === "python" ? config.env : undefined,
        cwd: process.cwd(),
        cacheDir: config.cacheDir,
        include: def.include,
        onEvent: this.#onEvent,
        signal: this.#options.signal,
      }).then(
        (built) => {
          this.#onEvent?.({
            type: "bundle:step",
            step: "build",
            digest: built.digest,
            durationMs: performance.now() - began,
            bytes: built.size,
            app: def.name,
            cached: built.cached,
          });
          return {
            bundle: {
              digest: built.digest,
              path: built.path,
              kind: built.kind,
            },
          };
        },
        (error: unknown) => {
          throw isEnvpackError(error)
            ? error
            : new TaskError(
                "ENVPACK_TASK_FAILED",
                `${def.name}: building its bundle failed: ${(error as Error).message}`,
                { cause: error },
              );
        },
      );
      this.#bundles.set(key, pending);
    }
    return pending;
  }
}

/** How a runtime reports an import its bundle cannot satisfy (Node's ESM loader, Python). */
const MISSING_IMPORT =
  /Cannot find (?:package|module) |No module named |ModuleNotFoundError/;

/** The options worth a run log's first line: JSON-safe, without callbacks or secrets. */
function loggedOptions(options: AnyExecutorOptions): Record<string, unknown> {
  const { onEvent: _onEvent, signal: _signal, password, ...rest } = options;
  return { ...rest, ...(password === undefined ? {} : { password: true }) };
}

/**
 * Where `progress: true` writes: stderr. The library's one writer to a standard stream, asked
 * for by the caller (STYLE §6 keeps the rest of the library off them).
 */
function progressOutput(): NodeJS.WriteStream {
  return process.stderr;
}

function canceledBefore(name: string): TaskError {
  return new TaskError(
    "ENVPACK_TASK_CANCELED",
    `${name}: canceled before it started (the executor was canceled)`,
    {},
  );
}
