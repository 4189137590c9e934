// The embedded backend: workers on this machine (one of its whole size, or several declared ones
// modelling a heterogeneous pool), each with its own directory, unpacked bundles and warm runtimes.

import { spawn } from "node:child_process";
import { mkdir, readFile, rm, statfs } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  TASK_PROTOCOL,
  bundleEnv,
  type OnEvent,
  type Resources,
  type TaskBundle,
  type TaskReply,
  type TaskRequest,
  type TaskResult,
  type TaskSpec,
  type TaskUsage,
} from "../../core/light.js";
import { ensureUnpacked } from "../../../packer/index.js";
import type {
  BackendListener,
  ExecBackend,
  Placement,
  WorkerInfo,
} from "../backend.js";
import {
  canceledOutcome,
  noUsage,
  overResourcesOutcome,
  processOutcome,
  stderrTail,
  taskResult,
  type Outcome,
  type ProcessEnd,
} from "../outcome.js";
import { runtimeFile } from "../runtime-file.js";
import { Monitor, type Peaks } from "./monitor.js";
import {
  Runtime,
  RuntimePool,
  type RunnerDeath,
  type RunnerReply,
} from "./runtime-pool.js";

/** A declared local worker: `cores` required; memory and disk (MB) default to the machine's. */
export interface WorkerSpec {
  id?: string | undefined;
  cores: number;
  memory?: number | undefined;
  disk?: number | undefined;
  gpus?: number | undefined;
}

/** Options of {@link LocalBackend}. */
export interface LocalBackendOptions {
  /** Default: one worker of this machine's detected size. */
  workers?: WorkerSpec[] | undefined;
  /** Where workers keep sandboxes and unpacked bundles. */
  workDir: string;
  /** Module apps in warm runtime processes (default), or a fresh process per task. */
  reuseRuntimes?: boolean | undefined;
  onEvent?: OnEvent | undefined;
}

/** This machine: cores, memory (MB) and the free disk (MB) of the file system holding `dir`. */
export async function detectResources(dir: string): Promise<Resources> {
  await mkdir(dir, { recursive: true });
  const fs = await statfs(dir);
  return {
    cores: availableParallelism(),
    memory: Math.floor(totalmem() / 1048576),
    disk: Math.floor((fs.bavail * fs.bsize) / 1048576),
    gpus: 0,
  };
}

interface LocalWorker {
  info: WorkerInfo;
  dir: string;
  unpacking: Map<string, Promise<string>>;
}

/**
 * Runs tasks in child processes on this machine. Each worker has a directory under `workDir`
 * holding its unpacked bundles (`envs/`, unpacked once per worker) and its sandboxes (`sandbox/`,
 * the tasks' cwd). Module tasks run in warm runtimes (`<env>/bin/node` with a bundle, else the
 * host's node), one task at a time each, pooled per worker, interpreter and extra environment,
 * replaced when one dies or is killed; with `reuseRuntimes: false` each gets a fresh process.
 * Python tasks run `python3 -I` (the bundle's, else the one on PATH) per task; commands run per
 * task with the bundle's `bin` first on PATH. Every process runs in its own process group, which
 * is what a kill (over a label, canceled, shutdown) ends.
 */
export class LocalBackend implements ExecBackend {
  /** Its workers are the declared ones (or this machine), all there once it started. */
  readonly fixedPool = true;
  readonly #options: LocalBackendOptions;
  readonly #workers = new Map<string, LocalWorker>();
  readonly #pool = new RuntimePool();
  /** The first entry of each unpacked bundle (read once per bundle, not per task). */
  readonly #entries = new Map<string, Promise<string>>();
  readonly #processes = new Set<{ kill(): void; exited(): Promise<void> }>();
  /** Runtimes being started or retired: shutdown waits for them so that none outlives it. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing = false;

  constructor(options: LocalBackendOptions) {
    this.#options = options;
  }

  async start(listener: BackendListener): Promise<void> {
    const machine = await detectResources(this.#options.workDir);
    const specs = this.#options.workers ?? [{ cores: machine.cores }];
    specs.forEach((spec, i) => {
      const id = spec.id ?? `local-${i + 1}`;
      const info: WorkerInfo = {
        id,
        resources: {
          cores: spec.cores,
          memory: spec.memory ?? machine.memory,
          disk: spec.disk ?? machine.disk,
          gpus: spec.gpus ?? 0,
        },
      };
      this.#workers.set(id, {
        info,
        dir: join(this.#options.workDir, id),
        unpacking: new Map(),
      });
    });
    await Promise.all(
      [...this.#workers.values()].map((w) => mkdir(w.dir, { recursive: true })),
    );
    for (const worker of this.#workers.values())
      listener.workerJoined(worker.info);
  }

  /** Pids of the warm runtimes alive now. */
  runtimePids(): number[] {
    return this.#pool.pids();
  }

  async runTask(
    task: TaskSpec,
    placement: Placement,
    signal: AbortSignal,
  ): Promise<TaskResult> {
    const worker = this.#workers.get(placement.workerId);
    if (worker === undefined)
      throw new Error(`no worker ${placement.workerId}`);
    const started = performance.now();
    if (signal.aborted || this.#closing)
      return this.#result(task, placement, worker, started, canceledOutcome());
    // Module apps use their runtime's own sandbox (the runner empties it after each task).
    const sandbox =
      task.payload.kind === "module"
        ? undefined
        : join(worker.dir, "sandbox", `${task.id}.${task.attempt}`);
    if (sandbox !== undefined) await mkdir(sandbox, { recursive: true });
    try {
      const env =
        task.bundle === undefined
          ? undefined
          : await this.#unpacked(worker, task.bundle);
      const outcome =
        sandbox === undefined
          ? await this.#runModule(task, placement, worker, env, signal)
          : await this.#runProcess(task, placement, env, sandbox, signal);
      return this.#result(task, placement, worker, started, outcome);
    } finally {
      if (sandbox !== undefined)
        await rm(sandbox, { recursive: true, force: true });
    }
  }

  async shutdown(): Promise<void> {
    this.#closing = true;
    await Promise.allSettled(this.#inFlight);
    for (const p of this.#processes) p.kill();
    await Promise.all([...this.#processes].map((p) => p.exited()));
    await this.#pool.closeAll();
  }

  /**
   * The result of a run. `usage.wallMs` is the task's own run (from handing it to its process to
   * its answer), so `cores` is not diluted by an unpack or a runtime start; `durationMs` is all.
   */
  #result(
    task: TaskSpec,
    placement: Placement,
    worker: LocalWorker,
    started: number,
    outcome: Outcome,
  ): TaskResult {
    const durationMs = performance.now() - started;
    const wallMs = outcome.usage.wallMs > 0 ? outcome.usage.wallMs : durationMs;
    return taskResult(
      task,
      placement,
      {
        ...outcome,
        usage: {
          ...outcome.usage,
          wallMs,
          cores: wallMs > 0 ? outcome.usage.cpuMs / wallMs : 0,
        },
      },
      durationMs,
    );
  }

  /** Starts a runtime; shutdown waits for starts in flight. */
  #launch<T>(start: () => Promise<T>): Promise<T> {
    return this.#track(start());
  }

  #track<T>(pending: Promise<T>): Promise<T> {
    this.#inFlight.add(pending);
    const forget = () => this.#inFlight.delete(pending);
    pending.then(forget, forget);
    return pending;
  }

  /** The worker's unpacked copy of a bundle: unpacked once, shared while in flight. */
  #unpacked(worker: LocalWorker, bundle: TaskBundle): Promise<string> {
    let pending = worker.unpacking.get(bundle.digest);
    if (pending === undefined) {
      const began = performance.now();
      pending = ensureUnpacked({
        file: bundle.path,
        digest: bundle.digest,
        envsDir: join(worker.dir, "envs"),
        onEvent: this.#options.onEvent,
      }).then((r) => {
        this.#options.onEvent?.({
          type: "bundle:step",
          step: "unpack",
          digest: bundle.digest,
          workerId: worker.info.id,
          durationMs: performance.now() - began,
        });
        return r.dir;
      });
      worker.unpacking.set(bundle.digest, pending);
      pending.catch(() => worker.unpacking.delete(bundle.digest));
    }
    return pending;
  }

  async #runModule(
    task: TaskSpec,
    placement: Placement,
    worker: LocalWorker,
    env: string | undefined,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const payload = task.payload as Extract<
      TaskSpec["payload"],
      { kind: "module" }
    >;
    // Canceled or shut down while its bundle was unpacking: start nothing.
    if (signal.aborted || this.#closing) return canceledOutcome();
    const node =
      env === undefined ? process.execPath : join(env, "bin", "node");
    // Extra variables are fixed when a runtime starts, so they are part of what it is.
    const key = `${worker.info.id}\0${node}\0${task.env === undefined ? "" : JSON.stringify(task.env)}`;
    const start = () =>
      this.#launch(() =>
        Runtime.start({
          node,
          runner: runtimeFile("module-runner.mjs"),
          cwd: worker.dir,
          env: runtimeEnv(env, task.env),
        }),
      );
    const reuse = this.#options.reuseRuntimes !== false;
    let runtime: Runtime;
    try {
      runtime = reuse
        ? await this.#pool.acquire(key, worker.info.id, start)
        : await start();
    } catch (error) {
      // A runtime that cannot start (a broken bundle's node, no such file) fails the task.
      return {
        ok: false,
        reason: "exit",
        error: { name: "RuntimeStartError", message: (error as Error).message },
        usage: noUsage(),
      };
    }
    if (!reuse) this.#processes.add(runtime);
    const sandbox = sandboxOf(worker, runtime);
    const module = await inBundle(env, payload.module, this.#entries);
    if (signal.aborted || this.#closing) {
      await this.#done(runtime, key, reuse, worker);
      return canceledOutcome();
    }
    let exceeded: "memory" | "disk" | undefined;
    let canceled = false;
    const monitor = new Monitor({
      pid: runtime.pid,
      sandbox,
      label: placement.label,
      warm: true,
      onExceeded: (what) => {
        exceeded = what;
        runtime.kill();
      },
    });
    const onAbort = () => {
      canceled = true;
      runtime.kill();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    let reply: RunnerReply | RunnerDeath;
    const sent = performance.now();
    try {
      reply = await runtime.run({
        id: task.id,
        module,
        exportName: payload.exportName,
        args: payload.args,
        cwd: sandbox,
      });
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    const wallMs = performance.now() - sent;
    const peaks = await monitor.stop();
    await this.#done(runtime, key, reuse, worker);
    if ("died" in reply)
      return ended(peaks, wallMs, exceeded, canceled || this.#closing, {
        kind: "module",
        exitCode: reply.exitCode ?? undefined,
        signal: reply.signal ?? undefined,
        stderrTail: stderrTail(reply.stderrTail),
        program: "the runtime process",
      });
    return processOutcome({
      kind: "module",
      exitCode: 0,
      signal: undefined,
      reply,
      usage: usageOf(peaks, wallMs, reply),
    });
  }

  /**
   * After a module task: a live warm runtime goes back to the pool (which retires the worker's
   * least recently used idle ones beyond 2 per core); a spawn-per-task runtime is let go; a dead
   * one is cleared away.
   */
  async #done(
    runtime: Runtime,
    key: string,
    reuse: boolean,
    worker: LocalWorker,
  ): Promise<void> {
    // A runtime that finished starting as the backend shut down is not kept.
    if (this.#closing) runtime.kill();
    if (reuse && runtime.alive) {
      const maxIdle = Math.max(2, 2 * worker.info.resources.cores);
      const retired = this.#pool.release(key, worker.info.id, runtime, maxIdle);
      for (const old of retired) {
        old.kill();
        this.#track(this.#retire(old, worker));
      }
      return;
    }
    if (runtime.alive) runtime.child.disconnect();
    await this.#retire(runtime, worker);
  }

  /** Waits for a runtime's end and removes its sandbox (what a killed task wrote). */
  async #retire(runtime: Runtime, worker: LocalWorker): Promise<void> {
    await runtime.exited();
    this.#processes.delete(runtime);
    await rm(sandboxOf(worker, runtime), { recursive: true, force: true });
  }

  /** Command and Python payloads: a process per task. */
  async #runProcess(
    task: TaskSpec,
    placement: Placement,
    env: string | undefined,
    sandbox: string,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const payload = task.payload as Exclude<
      TaskSpec["payload"],
      { kind: "module" }
    >;
    let file: string;
    let args: string[];
    let input: string | undefined;
    if (payload.kind === "python") {
      file = env === undefined ? "python3" : join(env, "bin", "python3");
      args = ["-I", "-B", runtimeFile("python-runner.py")];
      const request: TaskRequest = {
        type: "run",
        protocol: TASK_PROTOCOL,
        id: task.id,
        file: await inBundle(env, payload.file, this.#entries),
        function: payload.functionName,
        args: payload.args,
        cwd: sandbox,
      };
      input = JSON.stringify(request);
    } else if ("argv" in payload) {
      [file = "", ...args] = payload.argv;
    } else {
      file = "/bin/sh";
      args = ["-c", payload.shell];
    }
    if (signal.aborted || this.#closing) return canceledOutcome();
    const child = spawn(file, args, {
      cwd: sandbox,
      env: runtimeEnv(env, task.env),
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe", "pipe"],
      detached: true,
    });
    const handle = {
      kill: () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
        }
      },
      exited: () =>
        child.exitCode !== null || child.signalCode !== null
          ? Promise.resolve()
          : new Promise<void>((resolve) =>
              child.once("close", () => resolve()),
            ),
    };
    this.#processes.add(handle);
    let stdout = "";
    let stderr = "";
    let result = "";
    child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on(
      "data",
      (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)),
    );
    (child.stdio[3] as NodeJS.ReadableStream | null)?.on(
      "data",
      (c: Buffer) => (result += c.toString()),
    );
    // A runner that dies before reading its input is reported by its exit, not by EPIPE here.
    child.stdin?.on("error", () => {});
    child.stdin?.end(input);
    let exceeded: "memory" | "disk" | undefined;
    let canceled = false;
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once("spawn", () => resolve(undefined));
      child.once("error", resolve);
    });
    if (spawned !== undefined) {
      this.#processes.delete(handle);
      return {
        ok: false,
        reason: "exit",
        error: {
          name: "SpawnError",
          message: `cannot start ${file}: ${spawned.message}`,
        },
        usage: noUsage(),
      };
    }
    const spawnedAt = performance.now();
    const monitor = new Monitor({
      pid: child.pid as number,
      sandbox,
      label: placement.label,
      onExceeded: (what) => {
        exceeded = what;
        handle.kill();
      },
    });
    const onAbort = () => {
      canceled = true;
      handle.kill();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    // An abort (or a shutdown) while the process was starting: kill it now.
    if (signal.aborted || this.#closing) onAbort();
    const [exitCode, signalName] = await new Promise<
      [number | null, string | null]
    >((resolve) => child.once("close", (code, sig) => resolve([code, sig])));
    signal.removeEventListener("abort", onAbort);
    this.#processes.delete(handle);
    const wallMs = performance.now() - spawnedAt;
    const peaks = await monitor.stop();
    const tail = stderrTail(stderr);
    const reply =
      payload.kind === "python" && exitCode === 0 && result !== ""
        ? (JSON.parse(result) as TaskReply)
        : undefined;
    // Ended by itself with an answer: canceled or over the label too late to matter.
    if (reply !== undefined || (exitCode === 0 && payload.kind === "command"))
      return processOutcome({
        kind: payload.kind,
        exitCode: 0,
        signal: undefined,
        reply,
        stdout,
        stderrTail: tail,
        usage: usageOf(peaks, wallMs),
      });
    return ended(peaks, wallMs, exceeded, canceled || this.#closing, {
      kind: payload.kind,
      exitCode: exitCode ?? undefined,
      signal: signalName ?? undefined,
      stdout,
      program: file,
      stderrTail: tail,
    });
  }
}

/** The outcome of a run that did not answer by itself: the first cause wins. */
function ended(
  peaks: Peaks,
  wallMs: number,
  exceeded: "memory" | "disk" | undefined,
  canceled: boolean,
  end: Omit<ProcessEnd, "usage">,
): Outcome {
  const usage = usageOf(peaks, wallMs);
  if (exceeded !== undefined) return overResourcesOutcome(exceeded, usage);
  if (canceled) return canceledOutcome(usage);
  return processOutcome({ ...end, usage });
}

/**
 * Usage from the samples and what the runner reported itself (its exact CPU and disk), whichever
 * is larger: the samples also see processes the app started.
 */
function usageOf(
  peaks: Peaks,
  wallMs: number,
  reported?: TaskReply,
): TaskUsage {
  return {
    peakMemory: Math.max(peaks.rssMB, reported?.rssMB ?? 0),
    cpuMs: Math.max(peaks.cpuMs, reported?.cpuMs ?? 0),
    disk: Math.max(peaks.diskMB, reported?.diskMB ?? 0),
    wallMs,
    cores: 0,
  };
}

/**
 * The environment of a task's process: inside a bundle, as every bundled process sees it; without
 * one, the host's module paths and node options cleared (the runtime is envpack's own).
 */
function runtimeEnv(
  env: string | undefined,
  extra: Record<string, string> | undefined,
): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (env !== undefined) return bundleEnv(base, env);
  delete base["NODE_OPTIONS"];
  delete base["NODE_PATH"];
  return base;
}

/** A payload path: as given without a bundle; inside the bundle, "" meaning its first entry. */
async function inBundle(
  env: string | undefined,
  path: string,
  bundleEntries: Map<string, Promise<string>>,
): Promise<string> {
  if (env === undefined) return path;
  if (path !== "") return join(env, path);
  let entry = bundleEntries.get(env);
  if (entry === undefined) {
    entry = readFile(join(env, ".envpack", "bundle.json"), "utf8").then(
      (text) => {
        const first = (JSON.parse(text) as { entries?: string[] }).entries?.[0];
        if (first === undefined)
          throw new Error(`${env}: the bundle names no entry`);
        return join(env, first);
      },
    );
    bundleEntries.set(env, entry);
    entry.catch(() => bundleEntries.delete(env));
  }
  return entry;
}

/** A warm runtime's sandbox: its cwd for every task, emptied by the runner after each. */
function sandboxOf(worker: LocalWorker, runtime: Runtime): string {
  return join(worker.dir, "sandbox", `rt-${runtime.pid}`);
}
