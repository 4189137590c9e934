// The manager's end of one remote warm runtime's TCP connection: newline-delimited JSON
// (RuntimeWire, TaskRequest, TaskReply in core/task.ts), read one message at a time.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Socket } from "node:net";
import type { RuntimeWire } from "../../core/light.js";

type Hello = Extract<RuntimeWire, { type: "hello" }>;

/**
 * The manager's side of a runtime's handshake: a fresh challenge, answered with
 * HMAC-SHA256(token, nonce). Resolves with the runtime's hello, or why it failed.
 */
export async function proveToken(
  conn: RuntimeLink,
  token: Buffer,
  timeoutMs: number,
): Promise<Hello | "wrong" | "timeout" | "closed"> {
  const nonce = randomBytes(32).toString("hex");
  conn.send({ type: "challenge", nonce } satisfies RuntimeWire);
  let timer: NodeJS.Timeout | undefined;
  const message = await Promise.race([
    conn.next(),
    new Promise<"timeout">(
      (resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)),
    ),
  ]);
  clearTimeout(timer);
  if (message === "timeout") return "timeout";
  if (message === undefined) return "closed";
  const hello = message as Partial<Hello>;
  const expected = createHmac("sha256", token).update(nonce).digest();
  const answer = Buffer.from(
    typeof hello.answer === "string" ? hello.answer : "",
    "hex",
  );
  if (
    hello.type !== "hello" ||
    answer.length !== expected.length ||
    !timingSafeEqual(answer, expected)
  )
    return "wrong";
  return {
    type: "hello",
    protocol: hello.protocol as Hello["protocol"],
    answer: hello.answer as string,
    pid: typeof hello.pid === "number" ? hello.pid : 0,
    restMB: typeof hello.restMB === "number" ? hello.restMB : 0,
  };
}

/** Bytes a peer may send without a newline before it is dropped (a task's result may be large). */
const MAX_LINE = 256 << 20;

/** One runtime connection: write a message, await the next one (undefined once it closed). */
export class RuntimeLink {
  readonly socket: Socket;
  readonly #messages: unknown[] = [];
  #waiter: ((message: unknown) => void) | undefined;
  #buffer = "";
  #closed = false;
  readonly #closeHandlers: Array<() => void> = [];

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.#data(chunk));
    socket.on("error", () => {
      // A reset connection is a runtime gone: "close" follows and says so.
    });
    socket.on("close", () => {
      this.#closed = true;
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter?.(undefined);
      for (const handler of this.#closeHandlers) handler();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Calls `handler` once the connection has closed (at once if it has). */
  onClose(handler: () => void): void {
    if (this.#closed) handler();
    else this.#closeHandlers.push(handler);
  }

  send(message: unknown): void {
    if (!this.#closed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** The next message, or undefined once the connection has closed. One reader at a time. */
  next(): Promise<unknown> {
    if (this.#messages.length > 0)
      return Promise.resolve(this.#messages.shift());
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /** Ends the connection now. */
  destroy(): void {
    this.socket.destroy();
  }

  #data(chunk: string): void {
    this.#buffer += chunk;
    let end: number;
    while ((end = this.#buffer.indexOf("\n")) >= 0) {
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 1);
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch (error) {
        // Not this protocol: the peer is dropped, as a runtime that died.
        if (!(error instanceof SyntaxError)) throw error;
        this.socket.destroy();
        return;
      }
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (waiter !== undefined) waiter(message);
      else this.#messages.push(message);
    }
    if (this.#buffer.length > MAX_LINE) this.socket.destroy();
  }
}
