// The Work Queue wire protocol 9 as Debian's work_queue_worker speaks it: a pure codec (no
// sockets). Reference: ../shared/reference/work-queue-protocol.md (§2 framing, §7 task, §8 results).

import { createHash, randomInt } from "node:crypto";

/** The protocol this manager speaks (cctools 7.2–7.4 and Debian's coop-computing-tools 9.9). */
export const PROTOCOL_VERSION = 9;

/** The worker reads lines into a 4096-byte buffer; a longer line drops the connection (§2). */
export const MAX_LINE = 4095;

/** What a worker (or another client on the manager's port) sends, one message at a time. */
export type WorkerMessage =
  | {
      type: "workqueue";
      protocol: number;
      hostname: string;
      os: string;
      arch: string;
      version: string;
    }
  | { type: "info"; key: string; value: string }
  | { type: "feature"; name: string }
  | { type: "alive" }
  | {
      type: "resource";
      name: string;
      total: number;
      smallest: number;
      largest: number;
    }
  | { type: "available_results" }
  | {
      type: "result";
      status: number;
      exitCode: number;
      execUsec: number;
      taskId: number;
      stdout: Buffer;
    }
  | {
      type: "update";
      taskId: number;
      path: string;
      offset: number;
      data: Buffer;
    }
  | { type: "file"; name: string; data: Buffer }
  | { type: "dir"; name: string }
  | { type: "missing"; name: string; errno: number }
  | { type: "end" }
  /** Any other line: a status request (`queue_status`), an auth line, a challenge. */
  | { type: "line"; line: string };

/** A line or a payload too long to be protocol: the peer is not a worker (or is broken). */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** Lines longer than this (and payloads announced larger) are refused before buffering them. */
const MAX_PAYLOAD = 2 ** 31;

/**
 * Splits the byte stream of one connection into messages. Lines end with `\n` (`\r` dropped, as
 * the worker does); `result`, `update` and `file` are followed by exactly their announced bytes.
 */
export class MessageReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** A header whose payload is still arriving. */
  #waiting: { header: string[]; length: number } | undefined;

  /** Feeds bytes; returns the messages completed by them, in order. */
  push(chunk: Buffer): WorkerMessage[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const out: WorkerMessage[] = [];
    for (;;) {
      if (this.#waiting !== undefined) {
        if (this.#buffered < this.#waiting.length) break;
        const data = this.#take(this.#waiting.length);
        out.push(withPayload(this.#waiting.header, data));
        this.#waiting = undefined;
        continue;
      }
      const line = this.#line();
      if (line === undefined) break;
      const words = line.split(" ").filter((w) => w !== "");
      const length = payloadLength(words);
      if (length === undefined) out.push(parseLine(line, words));
      else this.#waiting = { header: words, length };
    }
    return out;
  }

  /** Bytes received and not yet part of a message. */
  get buffered(): number {
    return this.#buffered;
  }

  #line(): string | undefined {
    const joined = this.#join();
    const end = joined.indexOf(0x0a);
    if (end < 0) {
      if (joined.length > 65536)
        throw new ProtocolError(
          `a line of more than 65536 bytes without a newline`,
        );
      return undefined;
    }
    const line = this.#take(end + 1)
      .toString("latin1", 0, end)
      .replace(/\r/g, "");
    return line;
  }

  #join(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #take(n: number): Buffer {
    const joined = this.#join();
    const taken = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return taken;
  }
}

/** How many payload bytes follow this header line, or undefined when none do. */
function payloadLength(words: string[]): number | undefined {
  const [type] = words;
  let field: string | undefined;
  if (type === "result" && words.length === 6) field = words[3];
  else if (type === "update" && words.length === 5) field = words[4];
  else if (type === "file" && words.length === 3) field = words[2];
  else return undefined;
  const n = Number(field);
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAYLOAD)
    throw new ProtocolError(`bad payload length in "${words.join(" ")}"`);
  return n;
}

function withPayload(words: string[], data: Buffer): WorkerMessage {
  const [type, a = "", b = "", c = "", , e = ""] = words;
  if (type === "result")
    return {
      type,
      status: Number(a),
      exitCode: Number(b),
      execUsec: Number(words[4]),
      taskId: Number(e),
      stdout: data,
    };
  if (type === "update")
    return {
      type,
      taskId: Number(a),
      path: decodeName(b),
      offset: Number(c),
      data,
    };
  return { type: "file", name: decodeName(a), data };
}

function parseLine(line: string, words: string[]): WorkerMessage {
  const [type, a = "", b = "", c = "", d = "", e = ""] = words;
  switch (type) {
    case "workqueue":
      if (words.length >= 6 && /^\d+$/.test(a))
        return {
          type,
          protocol: Number(a),
          hostname: b,
          os: c,
          arch: d,
          version: e,
        };
      break;
    case "info":
      if (words.length >= 2)
        return { type, key: a, value: words.slice(2).join(" ") };
      break;
    case "feature":
      if (words.length === 2) return { type, name: decodeName(a) };
      break;
    case "alive":
    case "available_results":
    case "end":
      if (words.length === 1) return { type };
      break;
    case "resource":
      // `resource tag N` has one number; the others have total, smallest, largest.
      if (words.length >= 3)
        return {
          type,
          name: a,
          total: Number(b),
          smallest: Number(c === "" ? b : c),
          largest: Number(d === "" ? b : d),
        };
      break;
    case "dir":
      if (words.length === 3) return { type, name: decodeName(a) };
      break;
    case "missing":
      if (words.length === 3)
        return { type, name: decodeName(a), errno: Number(b) };
      break;
  }
  return { type: "line", line };
}

/** File names on the wire are URL-encoded (§2): no spaces, no `%` ambiguity. */
export function encodeName(name: string): string {
  return encodeURIComponent(name).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export function decodeName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    // Not valid percent-encoding: the worker sent it as is.
    return name;
  }
}

/** A cache name: one token the worker accepts under `cache/` (no `/`, no `..`, no space). */
export function isCacheName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) && !name.includes("..");
}

/** One task as the `task` message carries it (§7). */
export interface TaskMessage {
  /** Unique among the worker's tasks not yet killed; below 2^31. */
  id: number;
  /** Run by the worker as `/bin/sh -c cmd`. */
  cmd: string;
  category: string;
  cores: number;
  /** MB. */
  memory: number;
  /** MB. */
  disk: number;
  gpus: number;
  env?: Record<string, string> | undefined;
  /** Cached files hard-linked into the sandbox as `path`. */
  inputs?: Array<{ cacheName: string; path: string }> | undefined;
  /**
   * Sandbox paths moved into the cache as `cacheName` when the task ends, in this order. A
   * watched one (WATCH, flag 16) is also streamed while it grows, as `update` messages in the
   * replies to `send_results`, in this order within each reply (§8).
   */
  outputs?:
    | Array<{ cacheName: string; path: string; watch?: boolean | undefined }>
    | undefined;
  /**
   * Empty directories the worker makes in the sandbox (mode 0700) before the task starts; one
   * may also be an output's path (it is then moved to the cache when the task ends).
   */
  dirs?: string[] | undefined;
}

/**
 * The bytes of a `task` message. Every resource is sent (a task with none takes the whole
 * worker), as whole numbers: the worker reads the integer part, and rounding down keeps its
 * accounting within the manager's. `cmd` bytes have no newline after them; `env` bytes do (§12.1).
 */
export function encodeTask(task: TaskMessage): Buffer {
  if (!Number.isInteger(task.id) || task.id <= 0 || task.id >= 2 ** 31)
    throw new RangeError(`task id ${task.id} out of range`);
  const cmd = Buffer.from(task.cmd);
  const head = `task ${task.id}\ncmd ${cmd.length}\n`;
  const lines = [
    `category ${token(task.category)}`,
    `cores ${Math.floor(task.cores)}`,
    `gpus ${Math.floor(task.gpus)}`,
    `memory ${Math.floor(task.memory)}`,
    `disk ${Math.floor(task.disk)}`,
  ];
  const parts: Buffer[] = [Buffer.from(head), cmd];
  let body = lines.join("\n") + "\n";
  const env = Object.entries(task.env ?? {});
  if (env.length > 0) {
    const text = env
      .map(([k, v]) => {
        if (k === "" || k.includes("=") || /[\0\n]/.test(k + v))
          throw new RangeError(
            `environment variable ${JSON.stringify(k)} cannot be sent`,
          );
        return `${k}=${v}`;
      })
      .join("\n");
    const bytes = Buffer.from(text);
    parts.push(Buffer.from(body + `env ${bytes.length}\n`), bytes);
    body = "\n";
  }
  for (const input of task.inputs ?? [])
    body += `infile ${cacheToken(input.cacheName)} ${encodeName(input.path)} 0\n`;
  for (const output of task.outputs ?? [])
    body += `outfile ${cacheToken(output.cacheName)} ${encodeName(output.path)} ${output.watch === true ? WATCH : 0}\n`;
  // After the outfiles: the worker refuses an outfile whose sandbox path an input (a dir line
  // is one) already has, but a dir line checks only other inputs (work_queue.c at 065268945).
  for (const dir of task.dirs ?? []) body += `dir ${cacheToken(dir)}\n`;
  body += "end\n";
  parts.push(Buffer.from(body));
  return Buffer.concat(parts);
}

/** The header of a `put`; the file's `length` bytes follow it, with no newline after them. */
export function encodePut(
  cacheName: string,
  length: number,
  mode: number,
): Buffer {
  return Buffer.from(
    `put ${cacheToken(cacheName)} ${length} 0${(mode & 0o777).toString(8)}\n`,
  );
}

/** Asks for a cached file or directory (recursively): answered by file/dir/missing lines, then `end`. */
export function encodeGet(cacheName: string): string {
  return `get ${cacheToken(cacheName)} 1\n`;
}

export function encodeKill(taskId: number): string {
  return `kill ${taskId}\n`;
}

export function encodeUnlink(cacheName: string): string {
  return `unlink ${cacheToken(cacheName)}\n`;
}

/** Answered by every finished task's `result` (and `update`s), then `end` (the number is ignored). */
export const SEND_RESULTS = "send_results -1\n";
export const CHECK = "check\n";
/** The worker closes and, without `--single-shot`, comes back a second later. */
export const RELEASE = "release\n";
/** The worker kills its tasks, deletes its workspace and exits. */
export const EXIT = "exit\n";

/** The outfile flag that streams a file while it grows (WORK_QUEUE_WATCH). */
const WATCH = 16;

function token(value: string): string {
  const t = value.replace(/[^A-Za-z0-9._:+-]/g, "_");
  return t === "" ? "default" : t;
}

function cacheToken(name: string): string {
  if (!isCacheName(name))
    throw new RangeError(`bad cache name ${JSON.stringify(name)}`);
  return name;
}

/** The line both sides send first when a password is set (`link_auth.c`). */
export const AUTH_LINE = "auth password sha1";

/** A challenge: 63 random letters (the worker's are 0x48..0x7a; any non-space bytes work). */
export function makeChallenge(): string {
  let out = "";
  for (let i = 0; i < 63; i++) out += String.fromCharCode(97 + randomInt(26));
  return out;
}

/**
 * The answer to a challenge: hex SHA1 of the password file's exact bytes (its trailing newline
 * included, §3), a space and the challenge.
 */
export function answerChallenge(password: Buffer, challenge: string): string {
  return createHash("sha1")
    .update(password)
    .update(" ")
    .update(challenge, "latin1")
    .digest("hex");
}

/** What `resource_monitor --no-pprint` writes in its summary, as far as the manager reads it. */
export interface MonitorSummary {
  exitStatus: number | undefined;
  /** "normal", "signal" or "limits". */
  exitType: string | undefined;
  signal: number | undefined;
  /** The limits exceeded (`{ memory: [50, "MB"] }` → ["memory"]). */
  exceeded: string[];
  /** MB. */
  memory: number;
  /** MB. */
  disk: number;
  cpuSeconds: number;
  wallSeconds: number;
}

/**
 * Parses a resource_monitor summary. Its JSON escapes `'` as `\'`, which JSON does not allow
 * (§12.15): those are unescaped first.
 */
export function parseMonitorSummary(text: string): MonitorSummary {
  const raw = JSON.parse(text.replace(/\\'/g, "'")) as Record<string, unknown>;
  const amount = (key: string): number => {
    const v = raw[key];
    return Array.isArray(v) && typeof v[0] === "number" ? v[0] : 0;
  };
  const limits = raw["limits_exceeded"];
  return {
    exitStatus:
      typeof raw["exit_status"] === "number" ? raw["exit_status"] : undefined,
    exitType:
      typeof raw["exit_type"] === "string" ? raw["exit_type"] : undefined,
    signal: typeof raw["signal"] === "number" ? raw["signal"] : undefined,
    exceeded:
      limits !== null && typeof limits === "object" ? Object.keys(limits) : [],
    memory: amount("memory"),
    disk: amount("disk"),
    cpuSeconds: amount("cpu_time"),
    wallSeconds: amount("wall_time"),
  };
}

/** Quotes one word for /bin/sh. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word)
    ? word
    : `'${word.replace(/'/g, "'\\''")}'`;
}
