// The executor: apps called like async functions become tasks, fitted to workers by their
// resources, measured, labelled (autolabel), retried, and — with `pack` — run inside their bundle.

import { rm } from "node:fs/promises";
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
  type Resources,
  type TaskBundle,
  type TaskPayload,
  type TaskResult,
  type TaskSpec,
  type UnresolvedEntry,
} from "../core/index.js";
import {
  Categories,
  LocalBackend,
  Scheduler,
  type AutolabelMode,
  type CategorySummary,
  type ExecBackend,
  type WorkerInfo,
  type WorkerSpec,
} from "../exec/index.js";
import { build } from "./build.js";
import {
  checkJson,
  checkWorker,
  commandPayload,
  compileModuleApp,
  isTypeScript,
  mustExist,
} from "./executor-apps.js";
import { loadConfig } from "./load-config.js";
import { scan, strictFindings } from "./scan-app.js";

export type { WorkerSpec, CategorySummary, AutolabelMode };

/** Options of {@link Executor}. */
export interface ExecutorOptions {
  /** Where tasks run: `local` (this machine; the default and, for now, the only backend). */
  backend?: "local" | undefined;
  /** Local workers to model a heterogeneous pool; default one worker of this machine's size. */
  workers?: WorkerSpec[] | undefined;
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
  /** Runs again after a crash or a lost worker (default 0). Over-label retries do not count. */
  maxRetries?: number | undefined;
  /** Module apps in warm runtime processes (default true), or a fresh process per task. */
  reuseRuntimes?: boolean | undefined;
  /** The bundle cache (default as the CLI's: `$ENVPACK_CACHE_DIR` or `~/.cache/envpack`). */
  cacheDir?: string | undefined;
  /** Where local workers keep sandboxes and unpacked bundles (default: a temp directory). */
  workDir?: string | undefined;
  onEvent?: OnEvent | undefined;
  /** Aborting cancels every queued and running task. */
  signal?: AbortSignal | undefined;
}

/** Options of an app. */
export interface AppOptions {
  /** Default resources of its calls: `cores`, `memory` (MB), `disk` (MB), `gpus`. */
  resources?: ResourceSpec | undefined;
  /** Its category name under autocategory (default: the export or file name). */
  name?: string | undefined;
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
}

interface Pending {
  spec: TaskSpec;
  app: AppDef;
  declared: ResourceSpec;
  /** Over-label retries on a whole worker. */
  enlarged: boolean;
  retries: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Runs apps as tasks on workers. `await executor.shutdown()` when done.
 * @throws (from app calls) UsageError ENVPACK_USAGE_BAD_RESOURCES / ENVPACK_USAGE_BAD_ARGUMENT at the
 *   call, TaskError ENVPACK_TASK_FAILED / _TOO_LARGE / _OVER_RESOURCES / _CANCELED, and the build's
 *   errors under `pack`
 */
export class Executor {
  readonly #options: ExecutorOptions;
  readonly #scheduler = new Scheduler();
  readonly #categories: Categories;
  readonly #backend: ExecBackend & { runtimePids?(): number[] };
  readonly #started: Promise<void>;
  readonly #pending = new Map<string, Pending>();
  readonly #running = new Map<string, AbortController>();
  readonly #bundles = new Map<string, Promise<{ bundle: TaskBundle }>>();
  readonly #compiled = new Map<string, Promise<string>>();
  readonly #findings = new Map<
    string,
    Promise<UnresolvedEntry[] | undefined>
  >();
  readonly #workDir: string;
  /** Per category, the queued tasks whose resources are the category's label (autolabel). */
  readonly #labelled = new Map<string, Set<string>>();
  #next = 0;
  /** Calls still being prepared (compiled, built) before they are tasks. */
  #preparing = 0;
  #closed = false;
  #canceled = false;
  /** Each resource's largest amount on any worker: labels never ask for more. */
  #largest: Resources = { cores: 0, memory: 0, disk: 0, gpus: 0 };

  constructor(options: ExecutorOptions = {}) {
    if ((options.backend ?? "local") !== "local")
      throw new UsageError(
        "ENVPACK_USAGE_BAD_CONFIG",
        `unknown backend ${JSON.stringify(options.backend)}`,
        { hint: 'Use backend: "local".' },
      );
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
    for (const [i, w] of (options.workers ?? []).entries()) {
      checkWorker(w, i);
      if (w.id !== undefined && ids.has(w.id))
        throw new UsageError(
          "ENVPACK_USAGE_BAD_RESOURCES",
          `workers[${i}]: the id ${JSON.stringify(w.id)} is taken by another worker`,
        );
      if (w.id !== undefined) ids.add(w.id);
    }
    this.#options = options;
    this.#categories = new Categories({ window, mode });
    this.#workDir =
      options.workDir ??
      join(
        tmpdir(),
        `envpack-executor-${process.pid}-${Date.now().toString(36)}`,
      );
    this.#backend = new LocalBackend({
      workers: options.workers,
      workDir: this.#workDir,
      reuseRuntimes: options.reuseRuntimes,
      onEvent: options.onEvent,
    });
    this.#started = this.#backend.start({
      workerJoined: (info) => this.#joined(info),
      workerLeft: (id) => this.#left(id),
    });
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
    return this.#makeApp<A, R>(
      {
        name: options.name ?? `${basename(file, extname(file))}.${exportName}`,
        kind: "module",
        file,
        exportName,
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
    return this.#makeApp<string[], CommandResult>(
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
   * python3 on PATH).
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
    return this.#makeApp<A, R>(
      {
        name: options.name ?? `${basename(path, ".py")}.${functionName}`,
        kind: "python",
        file: path,
        exportName: functionName,
        env: options.env,
      },
      parseResourceSpec(options.resources, `python app ${functionName}`),
    );
  }

  /** Per category: samples, the label in use and why, peaks, over-label retries. */
  summary(): CategorySummary[] {
    return this.#categories.summary();
  }

  /**
   * Waits for every task to end (or, with `cancel`, cancels them) and stops every process the
   * executor started.
   */
  async shutdown(options: { cancel?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (options.cancel) {
      this.#canceled = true;
      for (const [id, pending] of this.#pending) {
        if (this.#scheduler.withdraw(id))
          this.#fail(pending, "canceled", undefined);
      }
      for (const controller of this.#running.values()) controller.abort();
    }
    // Calls still compiling or building become tasks (or, canceled, errors) before the backend stops.
    while (this.#pending.size > 0 || this.#preparing > 0)
      await new Promise((r) => setTimeout(r, 20));
    await this.#started.catch(() => {});
    await this.#backend.shutdown();
    // A work directory the executor chose is its own to remove.
    if (this.#options.workDir === undefined)
      await rm(this.#workDir, { recursive: true, force: true });
  }

  #makeApp<A extends unknown[], R>(
    def: AppDef,
    resources: ResourceSpec,
  ): App<A, R> {
    const call = ((...args: A) =>
      this.#submit(def, args, resources)) as unknown as App<A, R>;
    Object.defineProperty(call, "appName", { value: def.name });
    call.with = (options) =>
      this.#makeApp<A, R>(
        def,
        parseResourceSpec(options.resources, `${def.name}.with`),
      );
    return call;
  }

  async #submit(
    def: AppDef,
    args: unknown[],
    declared: ResourceSpec,
  ): Promise<never> {
    if (this.#canceled) throw canceledBefore(def.name);
    if (this.#closed)
      throw new UsageError(
        "ENVPACK_USAGE_BAD_ARGUMENT",
        `${def.name}: the executor is shut down`,
      );
    checkJson(args, def.name);
    let payload: TaskPayload;
    let bundle: TaskBundle | undefined;
    this.#preparing++;
    try {
      await this.#started;
      payload = await this.#payload(def, args);
      // Command apps run the worker's own commands: there is no module to pack.
      bundle =
        this.#options.pack && def.kind !== "command"
          ? (await this.#bundleOf(def)).bundle
          : undefined;
    } finally {
      this.#preparing--;
    }
    if (this.#canceled) throw canceledBefore(def.name);
    const id = `t${++this.#next}`;
    const category =
      this.#options.autocategory === false ? "default" : def.name;
    return new Promise((resolvePromise, reject) => {
      const pending: Pending = {
        spec: { id, category, payload, resources: {}, bundle, attempt: 0 },
        app: def,
        declared,
        enlarged: false,
        retries: 0,
        resolve: resolvePromise as (value: unknown) => void,
        reject,
      };
      this.#pending.set(id, pending);
      this.#enqueue(pending);
    });
  }

  /** Chooses the task's resources for this attempt and queues it. */
  #enqueue(pending: Pending): void {
    const { spec } = pending;
    const follows =
      this.#options.autolabel === true &&
      !pending.enlarged &&
      Object.keys(pending.declared).length === 0;
    spec.resources = pending.enlarged
      ? {}
      : follows
        ? this.#labelOf(spec.category)
        : pending.declared;
    const task = { id: spec.id, resources: spec.resources };
    if (this.#scheduler.anyFit(task) === undefined) {
      const largest = this.#scheduler.workers()[0];
      this.#pending.delete(spec.id);
      pending.reject(
        new TaskError(
          "ENVPACK_TASK_TOO_LARGE",
          `${pending.app.name} asks for ${JSON.stringify(spec.resources)}, more than any worker has (largest: ${largest?.id ?? "none"} with ${JSON.stringify(largest?.resources ?? {})})`,
          {
            hint: "Ask for less, or add a bigger worker.",
            details: { resources: spec.resources, largest: largest?.resources },
          },
        ),
      );
      return;
    }
    this.#options.onEvent?.({
      type: "task:state",
      id: spec.id,
      category: spec.category,
      state: spec.attempt === 0 ? "queued" : "retry",
    });
    this.#scheduler.submit(task, spec.attempt > 0);
    if (follows) {
      let ids = this.#labelled.get(spec.category);
      if (ids === undefined)
        this.#labelled.set(spec.category, (ids = new Set()));
      ids.add(spec.id);
    }
    this.#pump();
  }

  /** The resources a category's label gives a task: a whole worker while measuring, or when no worker holds it. */
  #labelOf(category: string): ResourceSpec {
    const label = this.#categories.labelFor(category);
    if (label === null) return {};
    return this.#scheduler.anyFit({ id: "", resources: label }) === undefined
      ? {}
      : label;
  }

  #pump(): void {
    for (const { taskId, placement } of this.#scheduler.schedule()) {
      const pending = this.#pending.get(taskId);
      if (pending !== undefined)
        this.#labelled.get(pending.spec.category)?.delete(taskId);
      if (pending === undefined) {
        this.#scheduler.release(taskId);
        continue;
      }
      const controller = new AbortController();
      this.#running.set(taskId, controller);
      this.#options.onEvent?.({
        type: "task:state",
        id: taskId,
        category: pending.spec.category,
        state: "running",
        workerId: placement.workerId,
        label: placement.label,
      });
      this.#backend.runTask(pending.spec, placement, controller.signal).then(
        (result) => this.#finished(pending, result),
        (error: unknown) => {
          this.#running.delete(taskId);
          this.#scheduler.release(taskId);
          this.#pending.delete(taskId);
          pending.reject(error);
          this.#pump();
        },
      );
    }
  }

  #finished(pending: Pending, result: TaskResult): void {
    const { spec } = pending;
    this.#running.delete(spec.id);
    this.#scheduler.release(spec.id);
    const over = result.reason === "over-resources";
    if (this.#options.autolabel && (result.ok || over)) {
      const changed = this.#categories.record(
        spec.category,
        result.usage,
        this.#largest,
        over,
      );
      if (changed !== undefined) {
        this.#options.onEvent?.({ type: "label:chosen", ...changed });
        // Tasks queued while the category was measuring wait with the new label, not a whole worker.
        const ids = this.#labelled.get(spec.category);
        if (ids !== undefined && ids.size > 0) {
          const resources = this.#labelOf(spec.category);
          this.#scheduler.reshape(ids, resources);
          for (const id of ids) {
            const queued = this.#pending.get(id);
            if (queued !== undefined) queued.spec.resources = resources;
          }
        }
      }
    }
    this.#options.onEvent?.({
      type: "task:state",
      id: spec.id,
      category: spec.category,
      state: result.ok ? "done" : "failed",
      workerId: result.workerId,
      label: result.label,
      result,
    });
    if (result.ok) {
      this.#pending.delete(spec.id);
      pending.resolve(result.value);
    } else if (
      over &&
      this.#options.autolabel &&
      !pending.enlarged &&
      !this.#canceled &&
      !isWhole(result.label, this.#workerSize(result.workerId))
    ) {
      // Work Queue's rule: a task over its label runs again with the whole worker.
      pending.enlarged = true;
      spec.attempt++;
      this.#enqueue(pending);
    } else if (
      crashed(pending.app, result) &&
      pending.retries < (this.#options.maxRetries ?? 0) &&
      !this.#canceled
    ) {
      pending.retries++;
      spec.attempt++;
      this.#enqueue(pending);
    } else if (
      this.#options.pack &&
      MISSING_IMPORT.test(result.error?.message ?? "")
    ) {
      // The bundle lacks something the app imports: the scan's findings say what and where.
      // The task stays pending (a drain waits) until they are attached.
      // The findings are extra: if scanning fails, the task's own failure is still its error.
      void this.#findingsOf(pending.app).then(
        (unresolved) => this.#fail(pending, result.reason, result, unresolved),
        () => this.#fail(pending, result.reason, result),
      );
    } else {
      this.#fail(pending, result.reason, result);
    }
    this.#pump();
  }

  /** The scan's unresolved imports of a packed app (scanned again once, only after a failure). */
  #findingsOf(def: AppDef): Promise<UnresolvedEntry[] | undefined> {
    const key = `${def.file}\0${def.env ?? ""}`;
    let pending = this.#findings.get(key);
    if (pending === undefined) {
      const config = loadConfig({
        cacheDir: this.#options.cacheDir,
        env: def.env,
      });
      pending = scan({
        entries: [def.file as string],
        env: def.kind === "python" ? config.env : undefined,
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

  #fail(
    pending: Pending,
    reason: TaskResult["reason"],
    result: TaskResult | undefined,
    unresolved?: UnresolvedEntry[] | undefined,
  ): void {
    this.#pending.delete(pending.spec.id);
    const name = pending.app.name;
    const code =
      reason === "over-resources"
        ? "ENVPACK_TASK_OVER_RESOURCES"
        : reason === "canceled"
          ? "ENVPACK_TASK_CANCELED"
          : "ENVPACK_TASK_FAILED";
    const what =
      result?.error !== undefined
        ? `${result.error.name}: ${result.error.message}`
        : reason;
    pending.reject(
      new TaskError(code, `${name} (${pending.spec.id}) failed: ${what}`, {
        hint:
          reason === "over-resources"
            ? "Give the app more resources (app.with({ resources })) or turn on autolabel."
            : unresolved !== undefined && unresolved.length > 0
              ? `The scan found ${unresolved.length} unresolved import${unresolved.length === 1 ? "" : "s"} (first: '${unresolved[0]?.specifier}' at ${unresolved[0]?.file}:${unresolved[0]?.line}): install ${unresolved.length === 1 ? "it" : "them"} where the app resolves its packages, then call it again in a new Executor.`
              : undefined,
        details: {
          reason,
          stderrTail: result?.stderrTail,
          ...(unresolved === undefined ? {} : { unresolved }),
        },
        result,
      }),
    );
  }

  #workerSize(id: string): Resources | undefined {
    return this.#scheduler.workers().find((w) => w.id === id)?.resources;
  }

  #joined(info: WorkerInfo): void {
    this.#scheduler.addWorker(info);
    const largest = { ...this.#largest };
    for (const key of ["cores", "memory", "disk", "gpus"] as const)
      largest[key] = Math.max(largest[key], info.resources[key]);
    this.#largest = largest;
    this.#pump();
  }

  /** A worker left: the backend resolves its running tasks as "worker-lost" (retried as crashes). */
  #left(id: string): void {
    this.#scheduler.removeWorker(id);
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

  /** Scans and builds an app's bundle once (a cache hit after the first time). */
  #bundleOf(def: AppDef): Promise<{ bundle: TaskBundle }> {
    const key = `${def.file}\0${def.env ?? ""}`;
    let pending = this.#bundles.get(key);
    if (pending === undefined) {
      const config = loadConfig({
        cacheDir: this.#options.cacheDir,
        env: def.env,
      });
      pending = build({
        entries: [def.file as string],
        env: def.kind === "python" ? config.env : undefined,
        cwd: process.cwd(),
        cacheDir: config.cacheDir,
        onEvent: this.#options.onEvent,
        signal: this.#options.signal,
      }).then(
        (built) => ({
          bundle: { digest: built.digest, path: built.path, kind: built.kind },
        }),
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

function canceledBefore(name: string): TaskError {
  return new TaskError(
    "ENVPACK_TASK_CANCELED",
    `${name}: canceled before it started (the executor was canceled)`,
    {},
  );
}

/**
 * A crash (retried up to maxRetries): the process died under the task — killed by a signal, lost
 * with its worker, or a module/Python runtime that exited. A command's non-zero exit and an app's
 * exception are the app's own answer, not retried.
 */
function crashed(app: AppDef, result: TaskResult): boolean {
  return (
    result.reason === "signal" ||
    result.reason === "worker-lost" ||
    (result.reason === "exit" &&
      app.kind !== "command" &&
      result.exitCode !== undefined)
  );
}

function isWhole(label: Resources, worker: Resources | undefined): boolean {
  return (
    worker !== undefined &&
    label.cores >= worker.cores &&
    label.memory >= worker.memory
  );
}
