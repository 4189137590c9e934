// One connected work_queue_worker: its files (each sent once per connection), its tasks, the
// replies it owes (in order), and one batched write per turn of the event loop.

import { createReadStream } from "node:fs";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import type { Resources } from "../../core/light.js";
import {
  SEND_RESULTS,
  encodeGet,
  encodeKill,
  encodePut,
  encodeUnlink,
  type WorkerMessage,
} from "./protocol.js";
import {
  cancelName,
  type ShippedFile,
  type WorkerReport,
} from "./task-command.js";

/** A task sent to the worker and not yet reported. */
export interface RemoteTask {
  /** The task's id on this worker. */
  wqId: number;
  /** Where its reports land in the worker's cache (fetched, then unlinked). */
  outName: string;
  /** Its request file in the worker's cache, if any (unlinked at the end). */
  requestName?: string | undefined;
  /** The resources the worker holds for it while it runs. */
  label: Resources;
  /** Called once with what came back. */
  done(report: WorkerReport): void;
  /** Called instead when the worker left first. */
  lost(): void;
  /** A watched output grew (`update`): `data` is its part from `offset`. */
  update?(path: string, offset: number, data: Buffer): void;
  /** A reply to `send_results` that carried updates for this task has ended. */
  updated?(): void;
}

/** Who the worker says it is. */
export interface WorkerIdentity {
  id: string;
  hostname: string;
  os: string;
  arch: string;
  address: string;
  features: string[];
}

/** A reply the worker owes, in the order asked. */
type Owed =
  | { kind: "results" }
  | { kind: "get"; task: RemoteTask; report: WorkerReport; prefix: string };

/** Files at most this large are kept in memory once read; larger ones are streamed each time. */
const SMALL_FILE = 1 << 20;

/** What travelled to this worker, for tests and status. */
export interface LinkStats {
  bytesSent: number;
  /** Per cache name, how many times it was put on this connection. */
  puts: Map<string, number>;
  tasksSent: number;
}

export class WorkerLink {
  readonly identity: WorkerIdentity;
  readonly resources: Resources;
  readonly socket: Socket;
  readonly stats: LinkStats = { bytesSent: 0, puts: new Map(), tasksSent: 0 };
  readonly tasks = new Map<number, RemoteTask>();
  /** Cache names already sent (or queued) on this connection: the worker keeps them until it leaves. */
  readonly #sent = new Set<string>();
  readonly #owed: Owed[] = [];
  /** Tasks with updates in the reply to `send_results` being read. */
  readonly #updated = new Set<RemoteTask>();
  /**
   * Tasks and the files they need go out before everything else queued in the same turn (kills,
   * unlinks, gets): the worker reads one message per turn of its loop and starts what it can
   * after each, so a new task is running before the worker cleans up after the last (§11).
   */
  readonly #urgent: Array<Buffer | ShippedFile> = [];
  readonly #queue: Array<Buffer | ShippedFile> = [];
  readonly #readSmall: (file: ShippedFile) => Promise<Buffer>;
  #flushing = false;
  #scheduled = false;
  #closed = false;
  /** When the last message arrived (ms, performance clock). */
  lastHeard = performance.now();
  /** When a `check` went out unanswered (ms), if one did. */
  checkSent: number | undefined;

  constructor(options: {
    identity: WorkerIdentity;
    resources: Resources;
    socket: Socket;
    readSmall: (file: ShippedFile) => Promise<Buffer>;
  }) {
    this.identity = options.identity;
    this.resources = options.resources;
    this.socket = options.socket;
    this.#readSmall = options.readSmall;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Queues a line (or bytes) for the next write. */
  send(data: string | Buffer): void {
    if (this.#closed) return;
    this.#queue.push(typeof data === "string" ? Buffer.from(data) : data);
    this.#schedule();
  }

  /** Queues a `task` message (after the files queued for it, before anything else). */
  sendTask(data: Buffer): void {
    if (this.#closed) return;
    this.#urgent.push(data);
    this.#schedule();
  }

  /**
   * Makes sure the worker holds a file under its cache name: queued once per connection, ahead
   * of whatever is queued after it (a task naming a missing file drops the connection, §12.3).
   * True when it was queued now (its first time on this connection).
   */
  ensure(file: ShippedFile): boolean {
    if (this.#sent.has(file.cacheName) || this.#closed) return false;
    this.#sent.add(file.cacheName);
    this.stats.puts.set(
      file.cacheName,
      (this.stats.puts.get(file.cacheName) ?? 0) + 1,
    );
    this.#urgent.push(encodePut(file.cacheName, file.size, file.mode), file);
    this.#schedule();
    return true;
  }

  /** Sends a per-task file (a request) under a name used once, ahead of its task. */
  put(cacheName: string, data: Buffer): void {
    if (this.#closed) return;
    this.#urgent.push(
      Buffer.concat([encodePut(cacheName, data.length, 0o600), data]),
    );
    this.#schedule();
  }

  /** Registers a task whose `task` message is queued (or about to be). */
  track(task: RemoteTask): void {
    this.tasks.set(task.wqId, task);
    this.stats.tasksSent++;
  }

  /**
   * Stops a task on the worker (no result is sent for it) and drops its files. The cancel file
   * goes first: a task the worker's own kill would miss ends itself on seeing it.
   */
  kill(wqId: number): void {
    const task = this.tasks.get(wqId);
    this.tasks.delete(wqId);
    this.flag(cancelName(wqId));
    this.send(encodeKill(wqId));
    this.send(encodeUnlink(cancelName(wqId)));
    if (task !== undefined) this.#drop(task);
  }

  /** Handles one message of the worker after its greeting. */
  receive(message: WorkerMessage): void {
    this.lastHeard = performance.now();
    this.checkSent = undefined;
    switch (message.type) {
      case "available_results":
        this.#owed.push({ kind: "results" });
        this.send(SEND_RESULTS);
        return;
      case "result": {
        const task = this.tasks.get(message.taskId);
        // A task canceled meanwhile: its result is not wanted.
        if (task === undefined) return;
        const report: WorkerReport = {
          status: message.status,
          exitCode: message.exitCode,
          execUsec: message.execUsec,
          stdout: message.stdout,
          files: new Map(),
        };
        this.#owed.push({
          kind: "get",
          task,
          report,
          prefix: `${task.outName}/`,
        });
        this.send(encodeGet(task.outName));
        return;
      }
      case "file": {
        const head = this.#owed[0];
        if (head?.kind === "get" && message.name.startsWith(head.prefix))
          head.report.files.set(
            message.name.slice(head.prefix.length),
            message.data,
          );
        return;
      }
      case "update": {
        const task = this.tasks.get(message.taskId);
        if (task?.update === undefined) return;
        task.update(message.path, message.offset, message.data);
        this.#updated.add(task);
        return;
      }
      case "end": {
        const head = this.#owed.shift();
        if (head?.kind === "results") {
          const updated = [...this.#updated];
          this.#updated.clear();
          for (const task of updated)
            if (this.tasks.get(task.wqId) === task) task.updated?.();
        }
        if (head?.kind !== "get") return;
        const { task, report } = head;
        if (this.tasks.get(task.wqId) !== task) return;
        this.tasks.delete(task.wqId);
        // Frees the sandbox and the worker's table entry (§12.5); the reports are read.
        this.send(encodeKill(task.wqId));
        this.#drop(task);
        task.done(report);
        return;
      }
      default:
        // alive, info, resource, feature, dir, missing: nothing to do here.
        return;
    }
  }

  /** The connection is gone: nothing more is written. */
  close(): void {
    this.#closed = true;
    this.#urgent.length = 0;
    this.#queue.length = 0;
  }

  /** True while bytes wait to be written (a large put may take a while to go out). */
  get writing(): boolean {
    return (
      this.#flushing ||
      this.#scheduled ||
      this.#urgent.length > 0 ||
      this.#queue.length > 0
    );
  }

  /** Resolves once everything queued has been handed to the socket. */
  async flushed(): Promise<void> {
    while (this.writing && !this.#closed)
      await new Promise((resolve) => setImmediate(resolve));
  }

  /** The next item to write: urgent ones first. */
  #next(): Buffer | ShippedFile | undefined {
    return this.#urgent[0] ?? this.#queue[0];
  }

  #shift(): void {
    if (this.#urgent.length > 0) this.#urgent.shift();
    else this.#queue.shift();
  }

  /** Puts an empty file under a name used once (a flag the task looks for). */
  flag(cacheName: string): void {
    this.send(encodePut(cacheName, 0, 0o600));
  }

  /** Removes a file from the worker's cache (a missing one is no error). */
  unlink(cacheName: string): void {
    this.send(encodeUnlink(cacheName));
  }

  #drop(task: RemoteTask): void {
    this.send(encodeUnlink(task.outName));
    if (task.requestName !== undefined)
      this.send(encodeUnlink(task.requestName));
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing) return;
    this.#scheduled = true;
    // Everything queued in this turn (results handled, tasks placed) goes out in one write.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#next() !== undefined && !this.#closed) {
        const buffers: Buffer[] = [];
        for (
          let item = this.#next();
          Buffer.isBuffer(item);
          item = this.#next()
        ) {
          buffers.push(item);
          this.#shift();
        }
        if (buffers.length > 0) await this.#write(Buffer.concat(buffers));
        const file = this.#next();
        if (file === undefined || Buffer.isBuffer(file)) continue;
        this.#shift();
        if (file.size <= SMALL_FILE)
          await this.#write(await this.#readSmall(file));
        else await this.#stream(file);
      }
    } catch (error) {
      // A failed write or a file that changed under us: the connection cannot continue.
      this.socket.destroy(error as Error);
    } finally {
      this.#flushing = false;
    }
  }

  async #write(data: Buffer): Promise<void> {
    if (this.#closed) return;
    this.stats.bytesSent += data.length;
    if (!this.socket.write(data))
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off("drain", done);
          this.socket.off("close", done);
          resolve();
        };
        this.socket.on("drain", done);
        this.socket.on("close", done);
      });
  }

  async #stream(file: ShippedFile): Promise<void> {
    let bytes = 0;
    const source = createReadStream(file.path);
    source.on("data", (chunk) => (bytes += chunk.length));
    await pipeline(source, this.socket, { end: false });
    this.stats.bytesSent += bytes;
    if (bytes !== file.size)
      throw new Error(
        `${file.path} changed while it was sent (${bytes} of ${file.size} bytes)`,
      );
  }
}
