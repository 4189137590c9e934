// The Work Queue backend: a manager listening on a TCP port that drives real, unmodified
// work_queue_worker processes (protocol 9). Workers join and leave at any time; each is a
// scheduler worker with the resources it reports. Reference: ../shared/reference/work-queue-protocol.md.

import {
  createServer,
  type AddressInfo,
  type Server,
  type Socket,
} from "node:net";
import { arch as hostArch, platform } from "node:os";
import { performance } from "node:perf_hooks";
import {
  UsageError,
  type Resources,
  type RuntimeConnect,
  type TaskResult,
  type TaskSpec,
  type WarningCode,
} from "../../core/light.js";
import type { BackendListener, ExecBackend, Placement } from "../backend.js";
import {
  canceledOutcome,
  lostOutcome,
  taskResult,
  type Outcome,
} from "../outcome.js";
import { CommandBatches, awaitRemote } from "./command-batches.js";
import {
  AUTH_LINE,
  CHECK,
  EXIT,
  MessageReader,
  PROTOCOL_VERSION,
  RELEASE,
  answerChallenge,
  encodeTask,
  makeChallenge,
  type WorkerMessage,
} from "./protocol.js";
import {
  OUT_DIR,
  REQUEST_PATH,
  decodeReport,
  workerTask,
  type MonitorChoice,
  type ShippedFile,
  type TaskFiles,
} from "./task-command.js";
import {
  checkOptions,
  onPath,
  readPassword,
  type WorkQueueOptions,
} from "./manager-options.js";
import { ShippedFiles } from "./shipped-files.js";
import type { ManagerSnapshot, StatusHandler } from "./manager-view.js";
import { StatusService } from "./status-service.js";
import {
  RUNTIME_GREETING,
  WarmRuntimes,
  type RemoteRun,
} from "./warm-runtimes.js";
import { WorkerLink, type WorkerIdentity } from "./worker-link.js";

/** How long shutdown waits for workers to close their connections before closing them. */
const CLOSE_WAIT_MS = 10_000;

/**
 * A Work Queue manager as an {@link ExecBackend}. Files travel as content-addressed cache names,
 * each once per worker connection; tasks run wrapped in resource_monitor with their label as
 * limits; a worker that leaves takes nothing with it (its tasks resolve "worker-lost").
 */
export class WorkQueueBackend implements ExecBackend {
  /**
   * What non-worker clients may ask, by the first word of their one line. Empty by default; a
   * status module plugs its handlers in here.
   */
  readonly requests = new Map<string, StatusHandler>();
  /**
   * One task queued on each worker per core beyond those running: the worker starts it as soon
   * as a slot frees, where the C manager waits a round trip per slot (§11).
   */
  readonly queuePerCore = 1;
  readonly #options: WorkQueueOptions;
  readonly #links = new Map<string, WorkerLink>();
  readonly #sockets = new Set<Socket>();
  /** Ids of the workers this process started: they get `exit` at shutdown, the others `release`. */
  readonly #started = new Set<string>();
  readonly #cancels = new Map<number, () => void>();
  readonly #shipper = new ShippedFiles();
  readonly #warned = new Set<string>();
  #server: Server | undefined;
  #listener: BackendListener | undefined;
  #password: Buffer | undefined;
  #monitor: ShippedFile | undefined;
  #address: { host: string; port: number } | undefined;
  #nextTask = 1;
  #closing = false;
  /** Status answers on the port and, with a project, catalog updates (status-service.ts). */
  readonly #status: StatusService;
  #keepalive: NodeJS.Timeout | undefined;
  /** Apps' warm runtimes on the workers (with reuseRuntimes). */
  readonly #warm: WarmRuntimes;
  /** The files of app tasks being placed in a warm runtime, by task id (for its launch). */
  readonly #files = new Map<string, TaskFiles>();
  /** Short command tasks sent several to a Work Queue task. */
  readonly #commands: CommandBatches;

  constructor(options: WorkQueueOptions) {
    checkOptions(options);
    this.#options = options;
    this.#warm = new WarmRuntimes({
      launch: (link, task, label, connect) =>
        this.#dispatch(
          link,
          task,
          label,
          this.#files.get(task.id) ?? {},
          connect,
        ),
      port: () => this.#address?.port ?? 0,
      idleMs: options.runtimeIdleMs,
      onEvent: options.onEvent,
    });
    this.#commands = new CommandBatches({
      enabled: options.batchCommands !== false,
      nextId: () => this.#newId(),
      monitorFor: (link) => this.#monitorFor(link),
      single: (link, task, label) => this.#dispatch(link, task, label, {}),
    });
    this.#status = new StatusService(this, {
      project: options.project,
      catalog: options.catalog,
      onEvent: options.onEvent,
    });
  }

  async start(listener: BackendListener): Promise<void> {
    this.#listener = listener;
    if (this.#options.password !== undefined)
      this.#password = await readPassword(this.#options.password);
    if (this.#options.monitor !== false) {
      const path =
        this.#options.resourceMonitor === undefined
          ? await onPath("resource_monitor")
          : this.#options.resourceMonitor;
      if (path !== undefined && path !== null)
        this.#monitor = await this.#shipper.ship(
          path,
          "resource_monitor",
          0o755,
        );
    }
    const host = this.#options.host ?? "127.0.0.1";
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) =>
        reject(
          new UsageError(
            "ENVPACK_USAGE_BAD_CONFIG",
            `cannot listen on ${host}:${this.#options.port}: ${error.code ?? error.message}`,
            {
              hint: "Choose another port (port: 0 picks a free one) or host.",
              cause: error,
            },
          ),
        ),
      );
      server.listen(this.#options.port, host, () => resolve());
    });
    const address = server.address() as AddressInfo;
    this.#address = { host, port: address.port };
    this.#status.attach(listener);
    await this.#status.start();
    const every = this.#options.keepaliveMs ?? 30_000;
    this.#keepalive = setInterval(
      () => this.#checkWorkers(every),
      Math.max(50, every / 4),
    );
    this.#keepalive.unref();
  }

  /** Asks silent workers whether they are there; drops those that stay silent. */
  #checkWorkers(every: number): void {
    const now = performance.now();
    for (const link of this.#links.values()) {
      if (link.writing) {
        // The clock runs once what was queued (a bundle) has gone out.
        if (link.checkSent !== undefined) link.checkSent = now;
        continue;
      }
      if (link.checkSent === undefined) {
        if (now - link.lastHeard >= every) {
          link.checkSent = now;
          link.send(CHECK);
        }
      } else if (now - link.checkSent >= every) {
        this.#warn(
          "ENVPACK_WARN_WQ_WORKER_SILENT",
          `dropped worker ${link.identity.id} (${link.identity.address}): no answer to a check for ${Math.round(every / 1000)} s; its tasks run elsewhere`,
        );
        link.socket.destroy();
      }
    }
  }

  /** Where workers connect: `work_queue_worker HOST PORT`. Undefined until started. */
  address(): { host: string; port: number } | undefined {
    return this.#address;
  }

  /**
   * An app in a warm runtime is not queued on a worker: its runtime is placed when it
   * starts (and makes room by ending idle runtimes); every other task may wait in a worker's queue.
   */
  mayQueue(task: TaskSpec): boolean {
    return !this.#isWarm(task);
  }

  /** A command task that may share a Work Queue task takes a part of a queue place (command-batches.ts). */
  queueShare(task: TaskSpec): number {
    return this.#commands.share(task);
  }

  snapshot(): ManagerSnapshot {
    const workers = [...this.#links.values()].map((link) => ({
      ...link.identity,
      resources: { ...link.resources },
      tasksRunning: link.tasks.size,
      tasksSent: link.stats.tasksSent,
      bytesSent: link.stats.bytesSent,
      puts: Object.fromEntries(link.stats.puts),
    }));
    return {
      host: this.#address?.host ?? "",
      port: this.#address?.port ?? 0,
      workers,
      tasksRunning: workers.reduce((n, w) => n + w.tasksRunning, 0),
    };
  }

  async runTask(
    task: TaskSpec,
    placement: Placement,
    signal: AbortSignal,
  ): Promise<TaskResult> {
    const started = performance.now();
    const finish = (outcome: Outcome): TaskResult =>
      taskResult(task, placement, outcome, performance.now() - started);
    if (signal.aborted || this.#closing) return finish(canceledOutcome());
    const files = await this.#shipper.forTask(task);
    // The worker may have left while the files were looked at.
    const link = this.#links.get(placement.workerId);
    if (link === undefined || link.closed) return finish(lostOutcome());
    if (signal.aborted || this.#closing) return finish(canceledOutcome());
    const untrack = this.#status.running(task, placement);
    if (this.#isWarm(task))
      try {
        this.#files.set(task.id, files);
        const { outcome } = await this.#warm.run(
          task,
          link,
          placement.label,
          signal,
        );
        return finish(outcome);
      } finally {
        this.#files.delete(task.id);
        untrack();
      }
    this.#warm.makeRoom(link, placement.label);
    let outcome: Outcome;
    try {
      if (
        this.#commands.batchable(task) &&
        this.#monitorFor(link).kind !== "worker"
      )
        outcome = await this.#commands.run(task, link, placement.label, signal);
      else {
        const remote = this.#dispatch(link, task, placement.label, files);
        const run = awaitRemote(remote, signal);
        this.#cancels.set(remote.wqId, run.cancel);
        outcome = await run.outcome;
        this.#cancels.delete(remote.wqId);
      }
    } finally {
      untrack();
    }
    this.#commands.record(task, outcome);
    return finish(outcome);
  }

  /** Whether a task runs in a warm runtime: an app's, with reuseRuntimes. */
  #isWarm(task: TaskSpec): boolean {
    return (
      task.payload.kind !== "command" && this.#options.reuseRuntimes !== false
    );
  }

  /** Warm runtimes alive now, for tests and status. */
  runtimes(): ReturnType<WarmRuntimes["list"]> {
    return this.#warm.list();
  }

  /**
   * Sends one task to a worker: its files (each once per connection), its request, the task.
   * `connect` makes an app task a warm runtime (warm-runtimes.ts).
   */
  #dispatch(
    link: WorkerLink,
    task: TaskSpec,
    label: Resources,
    files: TaskFiles,
    connect?: RuntimeConnect,
  ): RemoteRun {
    const monitor = this.#monitorFor(link);
    const wqId = this.#newId();
    const run = workerTask(task, wqId, label, files, monitor, connect);
    const outName = `out-${wqId}`;
    const requestName = run.request === undefined ? undefined : `req-${wqId}`;
    if (monitor.kind === "shipped") link.ensure(monitor.file);
    for (const file of [files.envpackRun, files.runner])
      if (file !== undefined) link.ensure(file);
    // A layered bundle's layers before its index: each once per connection, shared by every
    // bundle that lists it.
    let sent = 0;
    for (const file of [...(files.layers ?? []), files.bundle])
      if (file !== undefined && link.ensure(file)) sent += file.size;
    if (sent > 0) this.#timeTransfer(link, task, sent);
    if (requestName !== undefined && run.request !== undefined)
      link.put(requestName, run.request);
    link.sendTask(
      encodeTask({
        id: wqId,
        cmd: run.cmd,
        category: task.category,
        ...label,
        env: run.env,
        inputs:
          requestName === undefined
            ? []
            : [{ cacheName: requestName, path: REQUEST_PATH }],
        outputs: [{ cacheName: outName, path: OUT_DIR }],
        dirs: run.dirs,
      }),
    );
    const ended = new Promise<Outcome>((resolve) =>
      link.track({
        wqId,
        outName,
        requestName,
        label,
        done: (report) => {
          const { outcome, unmonitored } = decodeReport(task, report);
          if (unmonitored) this.#unmonitored(link);
          resolve(outcome);
        },
        lost: () => resolve(lostOutcome()),
      }),
    );
    return { wqId, ended, kill: () => link.kill(wqId) };
  }

  /** A Work Queue task id not in use on any worker (below 2^31, §7). */
  #newId(): number {
    const id = this.#nextTask;
    this.#nextTask = this.#nextTask >= 2 ** 31 - 1 ? 1 : this.#nextTask + 1;
    return id;
  }

  async shutdown(): Promise<void> {
    this.#closing = true;
    await this.#warm.shutdown();
    await this.#status.stop();
    clearInterval(this.#keepalive);
    for (const cancel of [...this.#cancels.values()]) cancel();
    this.#commands.shutdown();
    for (const link of this.#links.values())
      link.send(this.#started.has(link.identity.id) ? EXIT : RELEASE);
    await Promise.all([...this.#links.values()].map((link) => link.flushed()));
    for (const link of this.#links.values()) link.socket.end();
    const server = this.#server;
    const closed =
      server === undefined
        ? Promise.resolve()
        : new Promise((r) => server.close(r));
    const sockets = [...this.#sockets].map(
      (socket) => new Promise((resolve) => socket.once("close", resolve)),
    );
    for (const socket of this.#sockets)
      if (!this.#isWorker(socket)) socket.destroy();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(sockets),
      new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #isWorker(socket: Socket): boolean {
    for (const link of this.#links.values())
      if (link.socket === socket) return true;
    return false;
  }

  /** One connection: a password exchange if set, then a worker's greeting or a status request. */
  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const address = `${socket.remoteAddress}:${socket.remotePort}`;
    const reader = new MessageReader();
    let link: WorkerLink | undefined;
    let authenticated = false;
    const refuse = (code: WarningCode, message: string) => {
      this.#warn(code, message, { address });
      socket.destroy();
    };
    const first = (message: WorkerMessage) => {
      if (message.type === "line" && message.line === AUTH_LINE) {
        if (this.#password === undefined)
          return refuse(
            "ENVPACK_WARN_WQ_AUTH",
            `refused the worker at ${address}: it asks for a password and this manager has none (give the manager password: FILE, the file the workers get with --password)`,
          );
        handle = authExchange();
        return;
      }
      if (message.type === "workqueue") {
        if (this.#password !== undefined && !authenticated)
          return refuse(
            "ENVPACK_WARN_WQ_AUTH",
            `refused the worker at ${address}: this manager needs a password (start the worker with --password FILE)`,
          );
        if (message.protocol !== PROTOCOL_VERSION)
          return refuse(
            "ENVPACK_WARN_WQ_PROTOCOL",
            `refused the worker at ${address} (${message.hostname}, cctools ${message.version}): it speaks Work Queue protocol ${message.protocol}, this manager speaks protocol ${PROTOCOL_VERSION} (cctools 7.2–7.4, Debian's coop-computing-tools); run a matching work_queue_worker`,
          );
        if (message.os === "foreman")
          return refuse(
            "ENVPACK_WARN_WQ_FOREMAN",
            `refused the foreman at ${address} (${message.hostname}): foremen are not supported; connect its workers to this manager directly`,
          );
        handle = greeting(message);
        return;
      }
      const line = message.type === "line" ? message.line : message.type;
      if (line.startsWith(`${RUNTIME_GREETING} `)) {
        // A warm runtime proves its own one-time token (warm-runtimes.ts).
        handle = () => {};
        socket.removeAllListeners("data");
        this.#warm.accept(socket, line, address);
        return;
      }
      const handler = this.requests.get(line.split(" ")[0] ?? "");
      if (
        handler !== undefined &&
        (this.#password === undefined || authenticated)
      ) {
        handler(line, {
          address,
          authenticated,
          reply: (body) => socket.end(body),
        });
        handle = () => {};
        return;
      }
      refuse(
        "ENVPACK_WARN_WQ_PEER",
        `refused a client at ${address}: it sent ${JSON.stringify(line.slice(0, 80))}, which is neither a protocol ${PROTOCOL_VERSION} worker's greeting nor a request this manager answers`,
      );
    };
    const authExchange = () => {
      const password = this.#password as Buffer;
      const mine = makeChallenge();
      socket.write(`${AUTH_LINE}\n${mine}\n`);
      let step = 0;
      let accepted = false;
      return (message: WorkerMessage) => {
        const line = message.type === "line" ? message.line : "";
        if (step === 0) socket.write(`${answerChallenge(password, line)}\n`);
        else if (step === 1) {
          accepted = line === answerChallenge(password, mine);
          socket.write(accepted ? "ok\n" : "failure\n");
          if (!accepted)
            return refuse(
              "ENVPACK_WARN_WQ_AUTH",
              `refused the worker at ${address}: wrong password (the password is the file's exact bytes, its final newline included)`,
            );
        } else {
          if (line !== "ok")
            return refuse(
              "ENVPACK_WARN_WQ_AUTH",
              `the worker at ${address} refused this manager's password`,
            );
          authenticated = true;
          handle = first;
        }
        step++;
      };
    };
    const greeting = (hello: Extract<WorkerMessage, { type: "workqueue" }>) => {
      const identity: WorkerIdentity = {
        id: "",
        hostname: hello.hostname,
        os: hello.os,
        arch: hello.arch,
        address,
        features: [],
      };
      const resources: Resources = { cores: 0, memory: 0, disk: 0, gpus: 0 };
      return (message: WorkerMessage) => {
        if (message.type === "info" && message.key === "worker-id")
          identity.id = message.value;
        else if (message.type === "feature")
          identity.features.push(message.name);
        else if (message.type === "resource" && message.name in resources)
          resources[message.name as keyof Resources] = message.total;
        else if (
          message.type === "info" &&
          message.key === "end_of_resource_update"
        ) {
          if (identity.id === "") identity.id = `${hello.hostname}-${address}`;
          link = this.#join(identity, resources, socket);
          handle = (m) => (link as WorkerLink).receive(m);
        }
      };
    };
    let handle: (message: WorkerMessage) => void = first;
    socket.on("data", (chunk: Buffer) => {
      let messages: WorkerMessage[];
      try {
        messages = reader.push(chunk);
      } catch (error) {
        refuse(
          "ENVPACK_WARN_WQ_PEER",
          `closed the connection of ${address}: ${(error as Error).message}`,
        );
        return;
      }
      for (const message of messages) {
        if (socket.destroyed) return;
        handle(message);
      }
    });
    socket.on("error", () => {
      // A reset connection is a worker gone: "close" follows and says so.
    });
    socket.on("close", () => {
      this.#sockets.delete(socket);
      if (link !== undefined) this.#leave(link);
    });
  }

  #join(
    identity: WorkerIdentity,
    resources: Resources,
    socket: Socket,
  ): WorkerLink {
    // The same worker back on a new connection before its old one was seen to close.
    const old = this.#links.get(identity.id);
    if (old !== undefined) {
      this.#leave(old);
      old.socket.destroy();
    }
    const link = new WorkerLink({
      identity,
      resources,
      socket,
      readSmall: (file) => this.#shipper.read(file.path),
    });
    this.#links.set(identity.id, link);
    this.#options.onEvent?.({
      type: "debug",
      message: `worker ${identity.id} joined from ${identity.address} (${identity.hostname}): ${JSON.stringify(resources)}`,
    });
    this.#listener?.workerJoined({
      id: identity.id,
      resources: { ...resources },
    });
    return link;
  }

  /** A worker left: the engine stops placing on it, then its tasks resolve "worker-lost". */
  #leave(link: WorkerLink): void {
    if (link.closed) return;
    link.close();
    this.#warm.workerLeft(link);
    if (this.#links.get(link.identity.id) === link) {
      this.#links.delete(link.identity.id);
      this.#options.onEvent?.({
        type: "debug",
        message: `worker ${link.identity.id} left (${link.identity.address})`,
      });
      if (!this.#closing) this.#listener?.workerLeft(link.identity.id);
    }
    const tasks = [...link.tasks.values()];
    link.tasks.clear();
    for (const task of tasks) task.lost();
  }

  /** A `bundle:step` transfer event once the bundle bytes queued now have been handed to the socket. */
  #timeTransfer(link: WorkerLink, task: TaskSpec, bytes: number): void {
    const onEvent = this.#options.onEvent;
    const digest = task.bundle?.digest;
    if (onEvent === undefined || digest === undefined) return;
    const began = performance.now();
    void link.flushed().then(() => {
      if (link.closed) return;
      onEvent({
        type: "bundle:step",
        step: "transfer",
        digest,
        workerId: link.identity.id,
        durationMs: performance.now() - began,
        bytes,
      });
    });
  }

  /** resource_monitor from this host when the worker can run it, else the worker's own. */
  #monitorFor(link: WorkerLink): MonitorChoice {
    if (this.#options.monitor === false) return { kind: "off" };
    if (
      this.#monitor !== undefined &&
      link.identity.os === "Linux" &&
      platform() === "linux" &&
      link.identity.arch === unameMachine(hostArch())
    )
      return { kind: "shipped", file: this.#monitor };
    return { kind: "worker" };
  }

  #unmonitored(link: WorkerLink): void {
    this.#warnOnce(
      "ENVPACK_WARN_WQ_UNMONITORED",
      `tasks on ${link.identity.id} (${link.identity.hostname}) run without resource_monitor: memory and disk labels are not enforced and autolabel sees no peaks (install coop-computing-tools on this host or on the workers)`,
    );
  }

  #warn(
    code: WarningCode,
    message: string,
    data?: Record<string, unknown>,
  ): void {
    this.#options.onEvent?.({
      type: "warn",
      code,
      message,
      ...(data ? { data } : {}),
    });
  }

  #warnOnce(code: WarningCode, message: string): void {
    if (this.#warned.has(code)) return;
    this.#warned.add(code);
    this.#warn(code, message);
  }
}

/** Node's arch as `uname -m` says it (what the worker's greeting carries). */
function unameMachine(arch: string): string {
  return arch === "x64" ? "x86_64" : arch === "arm64" ? "aarch64" : arch;
}
