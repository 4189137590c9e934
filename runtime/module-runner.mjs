// @ts-check
// The warm runtime of module apps: started once (by the bundled node, or the host's), it runs one
// task at a time as the executor asks over the IPC channel, and stays for the next. Zero
// dependencies: it runs inside bundles. Messages (protocol 1, see src/core/task.ts):
//   in:  { type: "run", protocol, id, module (file URL), exportName, args, cwd }
//   out: { type: "ready", protocol } once; { type: "result", protocol, id, ok, value?, error?,
//        cpuMs, rssMB, diskMB } per task.
// `cwd` is this runtime's sandbox: made on first use, measured and emptied after every task, so
// the executor touches no file per task.

import { mkdirSync, readdirSync, rmSync, lstatSync } from "node:fs";
import { join } from "node:path";
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

process.on("message", async (/** @type {any} */ message) => {
  if (message?.type !== "run") return;
  const cpu = process.cpuUsage();
  /** @type {Record<string, unknown>} */
  let outcome;
  try {
    mkdirSync(message.cwd, { recursive: true });
    process.chdir(message.cwd);
    const url = message.module.startsWith("file:")
      ? message.module
      : pathToFileURL(message.module).href;
    const exports = await import(url);
    const fn = exports[message.exportName];
    if (typeof fn !== "function")
      throw new TypeError(
        `${message.module} has no exported function ${message.exportName}`,
      );
    const value = await fn(...message.args);
    outcome = { ok: true, value: value === undefined ? null : value };
  } catch (error) {
    outcome = { ok: false, error: describe(error) };
  }
  const used = process.cpuUsage(cpu);
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
