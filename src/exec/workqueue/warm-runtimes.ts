// Warm runtimes on Work Queue workers: a long-lived Work Queue task per slot runs an app's node
// with runtime/module-runner.mjs --connect (or its python with runtime/python-runner.py
// --connect), which connects back to the manager, proves its one-time token and runs many tasks,
// one at a time, over that connection.

import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import {
  TASK_PROTOCOL,
  addResources,
  fits,
  type OnEvent,
  type Resources,
  type RuntimeConnect,
  type RuntimeWire,
  type TaskReply,
  type TaskSpec,
} from "../../core/light.js";
import { canceledOutcome, type Outcome } from "../outcome.js";
import { RuntimeLink, proveToken } from "./runtime-link.js";
import { replyOutcome, runtimeEnded, runtimeLost } from "./runtime-outcome.js";
import { taskRequest } from "./task-command.js";
import type { WorkerLink } from "./worker-link.js";

/** The first line a runtime sends on its connection: `envpack-runtime PROTOCOL ID`. */
export const RUNTIME_GREETING = "envpack-runtime";

/** A Work Queue task sent to a worker: how it ended (its report decoded), and a kill. */
export interface RemoteRun {
  wqId: number;
  /** Resolves once the task ended on its worker, or its worker left. Never after kill(). */
  ended: Promise<Outcome>;
  /** Kills the task on its worker (no report follows). */
  kill(): void;
}

/** Starts a runtime's Work Queue task on a worker (the manager's own dispatch). */
export type LaunchRuntime = (
  link: WorkerLink,
  task: TaskSpec,
  label: Resources,
  connect: RuntimeConnect,
) => RemoteRun;

/** Options of {@link WarmRuntimes}. */
export interface WarmRuntimesOptions {
  launch: LaunchRuntime;
  /** Where the manager listens (the runtime connects to the address its worker reached). */
  port: () => number;
  /** An idle runtime ends after this long (default 10 s), so its worker can idle out. */
  idleMs?: number | undefined;
  onEvent?: OnEvent | undefined;
}

/**
 * Resident MB a runtime may keep at rest beyond what it held after its first task before it is
 * replaced (as the local warm runtimes): memory earlier tasks keep alive would count in later peaks.
 */
export const RECYCLE_MB = 64;

/** A runtime that has not proved its token in this long is dropped. */
const HANDSHAKE_MS = 10_000;
/** After a runtime's connection drops, how long its Work Queue task's report is awaited. */
const REPORT_WAIT_MS = 30_000;

type State = "starting" | "idle" | "busy" | "ending";

interface WarmRuntime {
  id: string;
  key: string;
  worker: WorkerLink;
  label: Resources;
  token: Buffer;
  state: State;
  run: RemoteRun;
  conn: RuntimeLink | undefined;
  /** Resolves with the connection once the runtime proved its token, or undefined if it ended first. */
  joined: Promise<RuntimeLink | undefined>;
  join(conn: RuntimeLink | undefined): void;
  /** How the runtime's Work Queue task ended (first cause wins). */
  ended: Promise<Outcome>;
  end(outcome: Outcome): void;
  isEnded: boolean;
  idleTimer: NodeJS.Timeout | undefined;
  settledMB: number | undefined;
  /** The runtime's process id on its worker's host, once it joined. */
  pid: number | undefined;
}

/**
 * The warm runtimes of one manager, per worker. A runtime serves only tasks of its key (worker,
 * bundle, extra environment, label): its resource_monitor limits are its label's, fixed at start.
 */
export class WarmRuntimes {
  readonly #options: WarmRuntimesOptions;
  readonly #all = new Set<WarmRuntime>();
  /** Runtimes whose token has not been proved yet, by id. */
  readonly #starting = new Map<string, WarmRuntime>();
  #next = 0;
  #closing = false;

  constructor(options: WarmRuntimesOptions) {
    this.#options = options;
  }

  /** Runtimes alive now (any state), for tests and status. */
  list(): Array<{ id: string; worker: string; state: State; pid?: number }> {
    return [...this.#all].map((rt) => ({
      id: rt.id,
      worker: rt.worker.identity.id,
      state: rt.state,
      ...(rt.pid === undefined ? {} : { pid: rt.pid }),
    }));
  }

  /**
   * Runs an app task (module or Python) in a warm runtime of its key on `worker`: an idle one, or
   * a new one (after ending idle runtimes whose resources the worker needs). Resolves with the
   * task's outcome.
   */
  async run(
    task: TaskSpec,
    worker: WorkerLink,
    label: Resources,
    signal: AbortSignal,
  ): Promise<{ outcome: Outcome; wallMs?: number }> {
    const kind = task.payload.kind;
    if (kind === "command")
      throw new Error("a warm runtime runs module and Python tasks only");
    const key = runtimeKey(task, label);
    let rt = this.#idle(worker, key);
    if (rt === undefined) {
      this.makeRoom(worker, label);
      rt = this.#start(worker, task, label, key);
    }
    rt.state = "busy";
    clearTimeout(rt.idleTimer);
    const aborted = new Promise<undefined>((resolve) => {
      if (signal.aborted) resolve(undefined);
      signal.addEventListener("abort", () => resolve(undefined), {
        once: true,
      });
    });
    const conn = await Promise.race([rt.joined, aborted]);
    if (signal.aborted || this.#closing) {
      this.#kill(rt);
      return { outcome: canceledOutcome() };
    }
    if (conn === undefined)
      return {
        outcome: runtimeEnded(
          await rt.ended,
          "RuntimeStartError",
          "the warm runtime ended before it connected to the manager",
        ),
      };
    const request = taskRequest(task, ".");
    const sent = performance.now();
    conn.send(request);
    const reply = (await Promise.race([conn.next(), aborted])) as
      TaskReply | undefined;
    const wallMs = performance.now() - sent;
    if (signal.aborted || this.#closing) {
      this.#kill(rt);
      return { outcome: canceledOutcome(), wallMs };
    }
    if (reply === undefined || reply.type !== "result" || reply.id !== task.id)
      return { outcome: await this.#died(rt), wallMs };
    this.#release(rt, reply);
    return { outcome: replyOutcome(kind, reply, wallMs), wallMs };
  }

  /**
   * Ends idle runtimes on `worker` (least recently used first) until `label` fits beside what its
   * tasks hold: the scheduler counts only busy runtimes, but the worker counts idle ones too.
   */
  makeRoom(worker: WorkerLink, label: Resources): void {
    let held: Resources = { cores: 0, memory: 0, disk: 0, gpus: 0 };
    const ending = new Set<number>();
    for (const rt of this.#all)
      if (rt.worker === worker && rt.state === "ending")
        ending.add(rt.run.wqId);
    for (const task of worker.tasks.values())
      if (!ending.has(task.wqId)) held = addResources(held, task.label);
    held = addResources(held, label);
    const idle = [...this.#all].filter(
      (rt) => rt.worker === worker && rt.state === "idle",
    );
    while (!fits(held, worker.resources)) {
      const rt = idle.shift();
      if (rt === undefined) return;
      this.#retire(rt);
      held = addResources(held, rt.label, -1);
    }
  }

  /** A connection whose first line is a runtime's greeting: the challenge, then the runtime's. */
  accept(socket: Socket, line: string, address: string): void {
    const [, protocol, id = ""] = line.split(" ");
    const refuse = (why: string) => {
      this.#options.onEvent?.({
        type: "warn",
        code: "ENVPACK_WARN_WQ_AUTH",
        message: `refused a warm runtime at ${address}: ${why}`,
        data: { address },
      });
      socket.destroy();
    };
    if (protocol !== String(TASK_PROTOCOL))
      return refuse(
        `it speaks task protocol ${protocol}, this manager ${TASK_PROTOCOL}`,
      );
    const rt = this.#starting.get(id);
    if (rt === undefined || this.#closing)
      return refuse(`no runtime ${JSON.stringify(id)} is expected`);
    const conn = new RuntimeLink(socket);
    void proveToken(conn, rt.token, HANDSHAKE_MS).then((hello) => {
      if (hello === "closed") return;
      if (hello === "timeout") return refuse("it did not answer the challenge");
      if (hello === "wrong") return refuse(`wrong token for runtime ${id}`);
      // One-time: the token is spent; a second connection with it is refused.
      if (this.#starting.get(id) !== rt || rt.isEnded)
        return refuse(`runtime ${id} has already joined or ended`);
      this.#starting.delete(id);
      rt.conn = conn;
      rt.pid = hello.pid;
      conn.onClose(() => {
        // Gone while idle: its Work Queue task's report follows. A busy one's task sees it.
        if (rt.state === "idle") {
          rt.state = "ending";
          clearTimeout(rt.idleTimer);
        }
      });
      rt.join(conn);
    });
  }

  /** The worker left: its runtimes' tasks resolve through their Work Queue tasks ("worker-lost"). */
  workerLeft(worker: WorkerLink): void {
    for (const rt of this.#all)
      if (rt.worker === worker) {
        rt.conn?.destroy();
      }
  }

  /** Ends every runtime: idle ones told to exit, busy ones killed. */
  async shutdown(): Promise<void> {
    this.#closing = true;
    const all = [...this.#all];
    for (const rt of all) {
      if (rt.state === "idle") this.#retire(rt);
      else this.#kill(rt);
    }
    // Idle runtimes exit by themselves; their tasks' reports come back before the workers go.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(all.map((rt) => rt.ended)),
      new Promise((resolve) => (timer = setTimeout(resolve, 5_000))),
    ]);
    clearTimeout(timer);
  }

  #idle(worker: WorkerLink, key: string): WarmRuntime | undefined {
    for (const rt of this.#all)
      if (
        rt.worker === worker &&
        rt.key === key &&
        rt.state === "idle" &&
        rt.conn !== undefined &&
        !rt.conn.closed
      )
        return rt;
    return undefined;
  }

  #start(
    worker: WorkerLink,
    task: TaskSpec,
    label: Resources,
    key: string,
  ): WarmRuntime {
    const id = `rt-${++this.#next}`;
    const token = randomBytes(32);
    const host = worker.socket.localAddress ?? "127.0.0.1";
    const run = this.#options.launch(worker, task, label, {
      type: "connect",
      protocol: TASK_PROTOCOL,
      host: host.startsWith("::ffff:") ? host.slice("::ffff:".length) : host,
      port: this.#options.port(),
      runtimeId: id,
      token: token.toString("hex"),
    });
    let join!: (conn: RuntimeLink | undefined) => void;
    let end!: (outcome: Outcome) => void;
    const rt: WarmRuntime = {
      id,
      key,
      worker,
      label,
      token,
      state: "starting",
      run,
      conn: undefined,
      joined: new Promise((resolve) => (join = resolve)),
      join: (conn) => join(conn),
      ended: new Promise((resolve) => (end = resolve)),
      end: (outcome) => {
        if (rt.isEnded) return;
        rt.isEnded = true;
        rt.state = "ending";
        clearTimeout(rt.idleTimer);
        this.#all.delete(rt);
        this.#starting.delete(id);
        join(undefined);
        rt.conn?.destroy();
        end(outcome);
      },
      isEnded: false,
      idleTimer: undefined,
      settledMB: undefined,
      pid: undefined,
    };
    this.#all.add(rt);
    this.#starting.set(id, rt);
    void run.ended.then((outcome) => rt.end(outcome));
    this.#options.onEvent?.({
      type: "debug",
      message: `warm runtime ${id} starting on ${worker.identity.id} (${JSON.stringify(label)})`,
    });
    return rt;
  }

  /** After a task: back to idle, or ended when it keeps memory (see RECYCLE_MB) or its worker is going. */
  #release(rt: WarmRuntime, reply: TaskReply): void {
    if (rt.isEnded) return;
    const rest = reply.restMB;
    if (rest !== undefined) rt.settledMB ??= rest;
    const retained = rest === undefined ? 0 : rest - (rt.settledMB ?? rest);
    if (
      this.#closing ||
      rt.worker.closed ||
      retained > RECYCLE_MB ||
      (rest !== undefined && rest > rt.label.memory)
    ) {
      rt.state = "idle";
      this.#retire(rt);
      return;
    }
    rt.state = "idle";
    const idleMs = this.#options.idleMs ?? 10_000;
    rt.idleTimer = setTimeout(() => this.#retire(rt), idleMs);
    rt.idleTimer.unref();
  }

  /** Ends an idle runtime: told to exit; its Work Queue task then ends by itself. */
  #retire(rt: WarmRuntime): void {
    if (rt.state === "ending" || rt.isEnded) return;
    rt.state = "ending";
    clearTimeout(rt.idleTimer);
    if (rt.conn === undefined || rt.conn.closed) {
      this.#kill(rt);
      return;
    }
    rt.conn.send({ type: "exit" } satisfies RuntimeWire);
  }

  /** Kills a runtime at once (canceled, shutdown, stuck): no report follows its Work Queue kill. */
  #kill(rt: WarmRuntime): void {
    if (rt.isEnded) return;
    rt.run.kill();
    rt.end(canceledOutcome());
  }

  /** The runtime's connection dropped under a task: how its Work Queue task ended says why. */
  async #died(rt: WarmRuntime): Promise<Outcome> {
    rt.state = "ending";
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      rt.ended,
      new Promise<undefined>(
        (resolve) =>
          (timer = setTimeout(() => resolve(undefined), REPORT_WAIT_MS)),
      ),
    ]);
    clearTimeout(timer);
    if (outcome !== undefined)
      return runtimeEnded(
        outcome,
        "RuntimeExited",
        "the warm runtime exited while it ran the task",
      );
    this.#kill(rt);
    return runtimeLost((await rt.ended).usage, REPORT_WAIT_MS);
  }
}

/** What a runtime is fixed to at its start: its language, bundle, extra environment and label. */
function runtimeKey(task: TaskSpec, label: Resources): string {
  return [
    task.payload.kind,
    task.bundle?.digest ?? "",
    task.env === undefined ? "" : JSON.stringify(task.env),
    label.cores,
    label.memory,
    label.disk,
    label.gpus,
  ].join("\0");
}
