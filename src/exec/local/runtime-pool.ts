// Warm runtime processes for module apps: one task at a time each, reused across tasks, replaced
// when one dies or is killed.

import { spawn, type ChildProcess } from "node:child_process";
import {
  TASK_PROTOCOL,
  type RuntimeReady,
  type TaskReply,
  type TaskRequest,
} from "../../core/light.js";

/** What runtime/module-runner.mjs answers for one task. */
export type RunnerReply = TaskReply;

/** How a run ended when the process did not answer. */
export interface RunnerDeath {
  died: true;
  exitCode: number | null;
  signal: string | null;
  stderrTail: string;
}

/**
 * Node flags of a runtime: `--expose-gc` lets runtime/module-runner.mjs collect a task's garbage
 * before answering, so that a warm runtime's later tasks are not measured with it.
 */
export const RUNTIME_NODE_FLAGS: readonly string[] = ["--expose-gc"];

/**
 * Resident MB a runtime may keep beyond what it held after its first task (node, the runner, the
 * app's modules) before it is replaced: memory that earlier tasks keep alive (a growing cache, a
 * leak) would otherwise count in every later task's peak. The runner already collects garbage;
 * this bounds what a collection cannot free.
 */
export const RECYCLE_MB = 64;

/** A started runtime process. */
export class Runtime {
  readonly child: ChildProcess;
  readonly pid: number;
  #pending: ((outcome: RunnerReply | RunnerDeath) => void) | undefined;
  #stderr = "";
  #dead = false;
  /** Sent SIGKILL: no longer usable even before its exit is seen. */
  #killed = false;
  /** Resident MB at rest after its first task, and after its latest (as the runner reports). */
  #settledMB: number | undefined;
  #restMB = 0;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.pid = child.pid as number;
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
    });
    // The app's own console output is not the result; keep the pipe drained.
    child.stdout?.resume();
    child.on("message", (message: RunnerReply | RuntimeReady) => {
      if (message.type !== "result") return;
      if (message.restMB !== undefined) {
        this.#settledMB ??= message.restMB;
        this.#restMB = message.restMB;
      }
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.(message);
    });
    // A spawn failure is reported by start(); later errors (a closed channel) end in "exit".
    child.on("error", (error) => {
      this.#stderr += `\n${error.message}`;
    });
    child.on("exit", (exitCode, signal) => {
      this.#dead = true;
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.({ died: true, exitCode, signal, stderrTail: this.#stderr });
    });
  }

  /** Starts `node runner` and waits for its ready message. */
  static async start(options: {
    node: string;
    runner: string;
    cwd: string;
    env: NodeJS.ProcessEnv;
  }): Promise<Runtime> {
    const child = spawn(options.node, [...RUNTIME_NODE_FLAGS, options.runner], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      // Its own process group, so a kill reaches whatever the app started too.
      detached: true,
      serialization: "json",
    });
    const runtime = new Runtime(child);
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: RunnerReply | RuntimeReady) => {
        if (message.type !== "ready") return;
        child.off("message", onMessage);
        if (message.protocol !== TASK_PROTOCOL)
          reject(
            new Error(
              `the runtime speaks task protocol ${message.protocol}, not ${TASK_PROTOCOL}`,
            ),
          );
        else resolve();
      };
      child.on("message", onMessage);
      child.once("error", reject);
      // "close", not "exit": by then stderr has been read to its end.
      child.once("close", (code, signal) =>
        reject(
          new Error(
            `the runtime ${options.node} exited at start (${signal ?? code}): ${runtime.#stderr.trim().slice(-500)}`,
          ),
        ),
      );
    });
    try {
      await ready;
    } catch (error) {
      // One that started but cannot be used (another protocol) must not outlive the attempt.
      if (child.pid !== undefined) {
        runtime.kill();
        await runtime.exited();
      }
      throw error;
    }
    return runtime;
  }

  /** MB this runtime holds at rest beyond what it held after its first task. */
  get retainedMB(): number {
    return this.#settledMB === undefined ? 0 : this.#restMB - this.#settledMB;
  }

  /** Running and not being killed: fit for a task. */
  get alive(): boolean {
    return !this.#dead && !this.#killed;
  }

  /** Runs one task; resolves with the reply, or how the process died. */
  run(
    request: Omit<
      Extract<TaskRequest, { module: string }>,
      "type" | "protocol"
    >,
  ): Promise<RunnerReply | RunnerDeath> {
    if (this.#dead)
      return Promise.resolve({
        died: true,
        exitCode: null,
        signal: null,
        stderrTail: this.#stderr,
      });
    // A crash's stderr tail is this task's, not what earlier tasks wrote.
    this.#stderr = "";
    return new Promise((resolve) => {
      this.#pending = resolve;
      const message: TaskRequest = {
        type: "run",
        protocol: TASK_PROTOCOL,
        ...request,
      };
      this.child.send(message);
    });
  }

  /** Kills the process group (the runtime and anything it started). */
  kill(): void {
    if (this.#dead) return;
    // A kill racing the task's own answer (over a label, canceled) still retires the process.
    this.#killed = true;
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }

  /** Resolves once the process has exited. */
  exited(): Promise<void> {
    if (this.#dead) return Promise.resolve();
    return new Promise((resolve) => this.child.once("exit", () => resolve()));
  }
}

/**
 * Idle runtimes by key (worker, interpreter, environment), started on demand. A group (a worker)
 * keeps a bounded number idle: many apps' runtimes do not pile up on it.
 */
export class RuntimePool {
  readonly #idle = new Map<string, Runtime[]>();
  /** Per group, its idle runtimes, least recently used first. */
  readonly #idleOrder = new Map<
    string,
    Array<{ key: string; runtime: Runtime }>
  >();
  readonly #all = new Set<Runtime>();

  /** An idle runtime for `key`, or a new one. */
  async acquire(
    key: string,
    group: string,
    start: () => Promise<Runtime>,
  ): Promise<Runtime> {
    const idle = this.#idle.get(key);
    const order = this.#idleOrder.get(group);
    while (idle !== undefined && idle.length > 0) {
      const runtime = idle.pop() as Runtime;
      const at = order?.findIndex((entry) => entry.runtime === runtime) ?? -1;
      if (at >= 0) order?.splice(at, 1);
      // One not fit (dead, or killed and about to exit) leaves #all on its exit event.
      if (runtime.alive) return runtime;
    }
    const runtime = await start();
    this.#all.add(runtime);
    runtime.child.once("exit", () => this.#all.delete(runtime));
    return runtime;
  }

  /**
   * Returns a runtime for reuse (a dead one is dropped). Returns the runtimes retired (the caller
   * kills them): this one when it retains more than {@link RECYCLE_MB}, and the group's least
   * recently used beyond `maxIdle` idle.
   */
  release(
    key: string,
    group: string,
    runtime: Runtime,
    maxIdle: number,
  ): Runtime[] {
    if (!runtime.alive) return [];
    if (runtime.retainedMB > RECYCLE_MB) return [runtime];
    let idle = this.#idle.get(key);
    if (idle === undefined) this.#idle.set(key, (idle = []));
    idle.push(runtime);
    let order = this.#idleOrder.get(group);
    if (order === undefined) this.#idleOrder.set(group, (order = []));
    order.push({ key, runtime });
    const retired: Runtime[] = [];
    while (order.length > maxIdle) {
      const oldest = order.shift() as { key: string; runtime: Runtime };
      const list = this.#idle.get(oldest.key) ?? [];
      list.splice(list.indexOf(oldest.runtime), 1);
      retired.push(oldest.runtime);
    }
    return retired;
  }

  /** Kills every runtime and waits for them. */
  async closeAll(): Promise<void> {
    const all = [...this.#all];
    this.#idle.clear();
    this.#idleOrder.clear();
    for (const runtime of all) runtime.kill();
    await Promise.all(all.map((r) => r.exited()));
  }

  /** Pids of the live runtimes (for tests and diagnostics). */
  pids(): number[] {
    return [...this.#all].filter((r) => r.alive).map((r) => r.pid);
  }
}
