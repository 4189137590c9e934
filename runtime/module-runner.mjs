// @ts-check
// The warm runtime of module apps: started once (by the bundled node, or the host's), it runs one
// task at a time as the executor asks over the IPC channel, and stays for the next. Zero
// dependencies: it runs inside bundles. Messages (protocol 1) are RuntimeReady, TaskRequest and
// TaskReply in src/core/task.ts:
//   in:  { type: "run", protocol, id, module (path or file URL), exportName, args, cwd }
//   out: { type: "ready", protocol } once; { type: "result", protocol, id, ok, value?, error?,
//        cpuMs, rssMB, diskMB } per task.
// `cwd` is this runtime's sandbox: made on first use, measured and emptied after every task, so
// the executor touches no file per task.
// One-shot mode (`--once`, a remote worker's task): one TaskRequest read from stdin, its TaskReply
// written to file descriptor 3, then exit; the sandbox is the worker's (not emptied). Under a
// bundle (ENVPACK_ENV set by envpack-run) a relative module path is the bundle's, "" its entry.
// Remote warm mode (`--connect`, a long-lived Work Queue task): the same warm loop over a TCP
// connection back to the manager, after proving a one-time token (see connect()).
// Warm, started with node's --expose-gc, it collects a task's garbage before answering when the
// task grew it (see tidy): each task is measured from the runtime at rest.

import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  lstatSync,
  writeFileSync,
} from "node:fs";
import { isAbsolute, join } from "node:path";
import { pathToFileURL } from "node:url";

const PROTOCOL = 1;

/** Bytes of the regular files under `dir`, by allocated blocks. @param {string} dir */
function usage(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, {
    withFileTypes: true,
    recursive: true,
  }))
    if (entry.isFile())
      total += lstatSync(join(entry.parentPath, entry.name)).blocks * 512;
  return total;
}

/** Measures and empties the sandbox. @param {string} dir */
function sweep(dir) {
  const names = readdirSync(dir);
  if (names.length === 0) return 0;
  const bytes = usage(dir);
  for (const name of names)
    rmSync(join(dir, name), { recursive: true, force: true });
  return bytes / 1048576;
}

/** @param {unknown} error */
function describe(error) {
  if (error instanceof Error)
    return { name: error.name, message: error.message, stack: error.stack };
  return { name: "Error", message: String(error) };
}

/** Imported modules by path: a cached namespace skips the loader's resolve on every task. */
/** @type {Map<string, Promise<Record<string, unknown>>>} */
const modules = new Map();

/** @param {string} module */
function load(module) {
  let pending = modules.get(module);
  if (pending === undefined) {
    pending = import(
      module.startsWith("file:") ? module : pathToFileURL(module).href
    );
    modules.set(module, pending);
    // A module that failed to load is tried again by the next task.
    pending.catch(() => modules.delete(module));
  }
  return pending;
}

/** The sandbox of this process (made once; emptied after every task). */
let current = "";

// CPU is read once per task, at its end: a task's CPU is what the process used since the last
// one ended (the task plus receiving it), one getrusage call instead of two.
let cpuMark = process.cpuUsage();

const MB = 1048576;

/**
 * Growth over the runtime's resident memory at rest (MB) after which a task's garbage is collected
 * before its answer. Below it, what a task leaves is not worth a collection (~10 ms even for a
 * small heap); at most this much of an earlier task's garbage is ever counted in a later task.
 */
const TIDY_MB = 16;

/** V8's full collection, when node runs with --expose-gc (the executor starts runtimes so). */
const collect = typeof globalThis.gc === "function" ? globalThis.gc : undefined;

/** Resident MB of this runtime after its last collection (or at start), lowered as it falls. */
let restMB = process.memoryUsage.rss() / MB;

/**
 * Brings the runtime back to rest after a task that grew it by more than TIDY_MB, so the next task
 * is measured from there: V8 may keep a task's garbage (a released 250 MB buffer) resident well
 * into later tasks, whose peaks would count it and make autolabel's labels creep. A full
 * collection finds the garbage, but V8 frees array buffers after it on a background thread: read
 * at once, the resident size can be anywhere between the rest and the task's end (a buffer being
 * unmapped), and such a reading taken as the rest hides the next task's growth, whose garbage then
 * stays into the task after it. Every V8 collection first finishes the last one's array-buffer
 * sweeping, so a minor collection after the full one (a few ms on this small heap) makes the
 * reading final. A second round only when the runtime still holds more than TIDY_MB over its
 * rest: garbage found only by a second full collection goes too; live memory a task keeps (a
 * cache) stays and becomes the new rest. Returns whether it collected.
 * @param {number} endMB the resident MB at the task's end
 */
function tidy(endMB) {
  if (collect === undefined || endMB - restMB <= TIDY_MB) {
    restMB = Math.min(restMB, endMB);
    return false;
  }
  let nowMB = endMB;
  for (let round = 0; round < 2 && nowMB - restMB > TIDY_MB; round++) {
    collect();
    collect({ type: "minor" });
    nowMB = process.memoryUsage.rss() / MB;
  }
  restMB = nowMB;
  return true;
}

/**
 * Runs one request's function in its sandbox: the reply's ok/value/error.
 * @param {any} message
 * @returns {Promise<Record<string, unknown>>}
 */
async function run(message) {
  try {
    if (message.cwd !== current) {
      mkdirSync(message.cwd, { recursive: true });
      current = message.cwd;
    }
    // Every task starts in the sandbox, whatever the last one did with its cwd.
    process.chdir(current);
    const exports = await load(message.module);
    const fn = exports[message.exportName];
    if (typeof fn !== "function")
      throw new TypeError(
        `${message.module} has no exported function ${message.exportName}`,
      );
    const value = await fn(...message.args);
    return { ok: true, value: value === undefined ? null : value };
  } catch (error) {
    return { ok: false, error: describe(error) };
  }
}

/** A module path of a one-shot request: inside the bundle when relative, "" its first entry. */
/** @param {string} module */
function inBundle(module) {
  const env = process.env.ENVPACK_ENV;
  if (env === undefined || isAbsolute(module) || module.startsWith("file:"))
    return module;
  if (module !== "") return join(env, module);
  const meta = JSON.parse(
    readFileSync(join(env, ".envpack", "bundle.json"), "utf8"),
  );
  const entry = meta?.entries?.[0];
  if (typeof entry !== "string")
    throw new Error(`${env}: the bundle names no entry`);
  return join(env, entry);
}

if (process.argv[2] === "--once") {
  const message = JSON.parse(readFileSync(0, "utf8"));
  /** @type {Record<string, unknown>} */
  let outcome;
  try {
    outcome = await run({ ...message, module: inBundle(message.module) });
  } catch (error) {
    outcome = { ok: false, error: describe(error) };
  }
  const used = process.cpuUsage();
  const reply = {
    type: "result",
    protocol: PROTOCOL,
    id: message.id,
    cpuMs: (used.user + used.system) / 1000,
    rssMB: process.memoryUsage.rss() / 1048576,
  };
  let text;
  try {
    text = JSON.stringify({ ...reply, ...outcome });
  } catch (error) {
    text = JSON.stringify({
      ...reply,
      ok: false,
      error: describe(
        new TypeError(
          `the result of ${message.exportName} is not JSON-serialisable: ${describe(error).message}`,
        ),
      ),
    });
  }
  writeFileSync(3, text);
  // Whatever the app left pending (timers, sockets), the task is over.
  process.exit(0);
}

/**
 * Runs one warm request and answers it through `send`: the task's CPU since the last one ended,
 * its sandbox measured and emptied, its garbage collected before the answer. `peakMB` (remote
 * runtimes) is the resident high-water mark of this task alone, read after it.
 * @param {any} message @param {(reply: Record<string, unknown>) => void} send
 * @param {() => number | undefined} [peak]
 */
async function answer(message, send, peak) {
  let outcome = await run(message);
  const now = process.cpuUsage();
  const used = {
    user: now.user - cpuMark.user,
    system: now.system - cpuMark.system,
  };
  let diskMB = 0;
  try {
    diskMB = sweep(message.cwd);
  } catch (error) {
    outcome = { ok: false, error: describe(error) };
  }
  const rssMB = process.memoryUsage.rss() / MB;
  const peakMB = peak?.();
  // Before the answer: the next task is sent only then, and its samples must not see this garbage.
  // A collection's CPU is neither this task's nor the next one's.
  cpuMark = tidy(rssMB) ? process.cpuUsage() : now;
  const reply = {
    type: "result",
    protocol: PROTOCOL,
    id: message.id,
    cpuMs: (used.user + used.system) / 1000,
    rssMB,
    restMB,
    diskMB,
    ...(peakMB === undefined ? {} : { peakMB }),
  };
  try {
    send({ ...reply, ...outcome });
  } catch (error) {
    // The value could not be sent (not JSON): say so instead of hanging the task.
    send({
      ...reply,
      ok: false,
      error: describe(
        new TypeError(
          `the result of ${message.exportName} is not JSON-serialisable: ${describe(error).message}`,
        ),
      ),
    });
  }
}

/**
 * The resident high-water mark (MB) since the last reset, and a reset: Linux's VmHWM, cleared by
 * writing 5 to /proc/self/clear_refs. Undefined where /proc does not allow it (then rssMB counts).
 */
function highWater() {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code === "ENOENT")
      return undefined;
    throw error;
  }
}

function resetHighWater() {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch (error) {
    const code = /** @type {NodeJS.ErrnoException} */ (error).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EPERM")
      return false;
    throw error;
  }
}

/**
 * Remote warm mode (`--connect`, a long-lived Work Queue task): a RuntimeConnect on stdin says
 * where the manager is; this connects back, proves its one-time token over the manager's challenge
 * and runs TaskRequests one at a time (RuntimeWire in src/core/task.ts). It leaves when the
 * connection ends or the manager says `exit`. Its sandbox is `work/` in the task's directory.
 */
async function connect() {
  const { createConnection } = await import("node:net");
  const { createHmac } = await import("node:crypto");
  const config = JSON.parse(readFileSync(0, "utf8"));
  const sandbox = join(process.cwd(), "work");
  const socket = createConnection({ host: config.host, port: config.port });
  socket.setNoDelay(true);
  /** @param {unknown} value */
  const write = (value) => socket.write(`${JSON.stringify(value)}\n`);
  const canMeasure = resetHighWater();
  let buffered = "";
  let queue = Promise.resolve();
  /** @param {any} message */
  const handle = (message) => {
    if (message?.type === "challenge") {
      const answer = createHmac("sha256", Buffer.from(config.token, "hex"))
        .update(message.nonce)
        .digest("hex");
      write({
        type: "hello",
        protocol: PROTOCOL,
        answer,
        pid: process.pid,
        restMB,
      });
    } else if (message?.type === "run") {
      queue = queue.then(() => {
        let module;
        try {
          module = inBundle(message.module);
        } catch (error) {
          write({
            type: "result",
            protocol: PROTOCOL,
            id: message.id,
            ok: false,
            error: describe(error),
          });
          return;
        }
        if (canMeasure) resetHighWater();
        return answer(
          { ...message, module, cwd: sandbox },
          write,
          canMeasure ? highWater : undefined,
        );
      });
    } else if (message?.type === "exit") {
      socket.end();
      process.exit(0);
    }
  };
  socket.on("connect", () =>
    socket.write(`envpack-runtime ${PROTOCOL} ${config.runtimeId}\n`),
  );
  socket.on("data", (chunk) => {
    buffered += chunk.toString("utf8");
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      handle(JSON.parse(line));
    }
  });
  // The manager owns this process: when the connection ends (or never opens), leave.
  socket.on("error", (error) => {
    process.stderr.write(`envpack runtime: ${error.message}\n`);
    process.exit(1);
  });
  socket.on("close", () => process.exit(0));
}

if (process.argv[2] === "--connect") {
  await connect();
} else {
  process.on("message", (/** @type {any} */ message) => {
    if (message?.type !== "run") return;
    void answer(message, (reply) => process.send?.(reply));
  });
  // The executor owns this process: when the channel closes, leave.
  process.on("disconnect", () => process.exit(0));
  process.send?.({ type: "ready", protocol: PROTOCOL });
}
