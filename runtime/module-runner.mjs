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

process.on("message", async (/** @type {any} */ message) => {
  if (message?.type !== "run") return;
  let outcome = await run(message);
  const now = process.cpuUsage();
  const used = {
    user: now.user - cpuMark.user,
    system: now.system - cpuMark.system,
  };
  cpuMark = now;
  let diskMB = 0;
  try {
    diskMB = sweep(message.cwd);
  } catch (error) {
    outcome = { ok: false, error: describe(error) };
  }
  try {
    process.send?.({
      type: "result",
      protocol: PROTOCOL,
      id: message.id,
      ...outcome,
      cpuMs: (used.user + used.system) / 1000,
      rssMB: process.memoryUsage.rss() / 1048576,
      diskMB,
    });
  } catch (error) {
    // The value could not be sent (not JSON): say so instead of hanging the task.
    process.send?.({
      type: "result",
      protocol: PROTOCOL,
      id: message.id,
      ok: false,
      error: describe(
        new TypeError(
          `the result of ${message.exportName} is not JSON-serialisable: ${describe(error).message}`,
        ),
      ),
      cpuMs: (used.user + used.system) / 1000,
      rssMB: process.memoryUsage.rss() / 1048576,
      diskMB,
    });
  }
});
// The executor owns this process: when the channel closes, leave.
process.on("disconnect", () => process.exit(0));
process.send?.({ type: "ready", protocol: PROTOCOL });
