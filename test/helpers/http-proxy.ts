// A small HTTP proxy on 127.0.0.1 in front of a real server, for faults made for real: answers
// in the server's place, corrupts bodies, slows uploads, counts requests.

import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** What the proxy does with one request. */
export type ProxyDecision =
  | {
      forward: true;
      corrupt?: boolean;
      /** Drop both connections after passing on this many request-body bytes. */
      cutRequestAfter?: number;
      /** Drop the client's connection after passing on this many response-body bytes. */
      cutResponseAfter?: number;
      /** Go silent, connection open, after passing on this many response-body bytes. */
      stallResponseAfter?: number;
    }
  | { status: number; headers?: Record<string, string>; body?: string };

export interface ProxyOptions {
  /** `127.0.0.1:PORT` of the real server. */
  target: string;
  /** Decides per request (default: forward). */
  decide?: (req: IncomingMessage, index: number) => ProxyDecision;
  /** Request bodies are passed on at most this fast (bytes per second). */
  uploadBytesPerSecond?: number;
}

export interface Proxy {
  host: string;
  /** Every request seen, as `METHOD path`. */
  requests: string[];
  /** Body bytes passed on, by request index: `up` to the server, `down` to the client. */
  bodies: Array<{ up: number; down: number }>;
  close(): Promise<void>;
}

/** Starts the proxy; `decide` sees requests in arrival order. */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const requests: string[] = [];
  const bodies: Array<{ up: number; down: number }> = [];
  const server = createServer((req, res) => {
    const index = requests.push(`${req.method} ${req.url}`) - 1;
    const counts = { up: 0, down: 0 };
    bodies[index] = counts;
    const decision = options.decide?.(req, index) ?? { forward: true };
    if (!("forward" in decision)) {
      req.resume();
      res.writeHead(decision.status, decision.headers);
      res.end(decision.body ?? "");
      return;
    }
    forward(req, res, options, { ...decision, counts });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string")
    throw new Error("no port");
  return {
    host: `127.0.0.1:${address.port}`,
    requests,
    bodies,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function forward(
  req: IncomingMessage,
  res: ServerResponse,
  options: ProxyOptions,
  decision: Extract<ProxyDecision, { forward: true }> & {
    counts: { up: number; down: number };
  },
): void {
  const [hostname, port] = options.target.split(":");
  // The socket itself: a response that already ended has let go of it (keep-alive).
  const socket = req.socket;
  const dropClient = () => socket.destroy();
  const upstream = httpRequest(
    {
      hostname,
      port: Number(port),
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: options.target },
    },
    (answer) => {
      const headers = { ...answer.headers };
      // Upload locations point at the real server; keep the client talking to the proxy.
      if (typeof headers.location === "string")
        headers.location = headers.location.replace(
          `//${options.target}`,
          `//${req.headers.host ?? ""}`,
        );
      res.writeHead(answer.statusCode ?? 502, headers);
      const body: Readable = answer;
      const stages: Transform[] = [count((n) => (decision.counts.down += n))];
      if (decision.corrupt === true) stages.push(flipFirstByte());
      if (decision.cutResponseAfter !== undefined)
        stages.push(cutAfter(decision.cutResponseAfter, dropClient));
      if (decision.stallResponseAfter !== undefined)
        stages.push(stallAfter(decision.stallResponseAfter));
      pipeline([body, ...stages, res]).catch(() => res.destroy());
    },
  );
  upstream.on("error", () => res.destroy());
  const limit = options.uploadBytesPerSecond;
  const stages: Transform[] = [
    limit ? throttle(limit) : passThrough(),
    count((n) => (decision.counts.up += n)),
  ];
  if (decision.cutRequestAfter !== undefined)
    stages.push(
      cutAfter(decision.cutRequestAfter, () => {
        upstream.destroy();
        dropClient();
      }),
    );
  pipeline([req, ...stages, upstream]).catch(() => upstream.destroy());
}

function passThrough(): Transform {
  return new Transform({ transform: (chunk, _e, done) => done(null, chunk) });
}

function count(add: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      add(chunk.length);
      done(null, chunk);
    },
  });
}

function flipFirstByte(): Transform {
  let flipped = false;
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      if (!flipped && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] = (chunk[0] ?? 0) ^ 0xff;
        flipped = true;
      }
      done(null, chunk);
    },
  });
}

/** Passes `limit` bytes on, then calls `cut` and passes nothing more. */
function cutAfter(limit: number, cut: () => void): Transform {
  let passed = 0;
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      if (passed >= limit) return done();
      const room = limit - passed;
      passed += Math.min(room, chunk.length);
      if (chunk.length < room) return done(null, chunk);
      this.push(chunk.subarray(0, room));
      // Let the bytes before the cut reach the other side first.
      setTimeout(cut, 50);
      done();
    },
  });
}

/** Passes `limit` bytes on, then holds the rest forever: the stream neither moves nor ends. */
function stallAfter(limit: number): Transform {
  let passed = 0;
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      const room = limit - passed;
      if (room <= 0) return;
      passed += Math.min(room, chunk.length);
      if (chunk.length <= room) return done(null, chunk);
      this.push(chunk.subarray(0, room));
    },
  });
}

function throttle(bytesPerSecond: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      setTimeout(
        () => done(null, chunk),
        (chunk.length / bytesPerSecond) * 1000,
      );
    },
  });
}
