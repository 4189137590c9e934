// Tiny module tasks the local backend's tests run in real runtime processes.

import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { Worker } from "node:worker_threads";

const MB = 1024 * 1024;

/** The runtime's pid and cwd; also writes to stdout, which must not disturb the protocol. */
export function whoami(tag) {
  console.log(`{"type":"result","id":"forged ${tag}"}`);
  return { pid: process.pid, cwd: process.cwd(), tag };
}

/** Allocates `mb` MB, touches every page, holds it `holdMs` ms. */
export async function alloc(mb, holdMs) {
  const block = Buffer.alloc(mb * MB).fill(1);
  await delay(holdMs);
  return block.length / MB;
}

/** Fixed CPU work for one thread: `n` steps, whatever else the machine runs. */
export const BURN = `let x = 0; for (let i = 0; i < N; i++) x = (x * 31 + i) % 1000003;`;

/** Runs {@link BURN} of `n` steps in each of `threads` worker threads. */
export async function burn(threads, n) {
  const code = `const { workerData, parentPort } = require("node:worker_threads");
const N = workerData; ${BURN} parentPort.postMessage(x);`;
  await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise((resolve, reject) => {
          const worker = new Worker(code, { eval: true, workerData: n });
          worker.once("message", resolve);
          worker.once("error", reject);
        }),
    ),
  );
  return threads;
}

/** Writes `mb` MB into the cwd, 1 MB every `everyMs` ms. */
export async function writeDisk(mb, everyMs) {
  const chunk = Buffer.alloc(MB, 1);
  for (let i = 0; i < mb; i++) {
    writeFileSync(`part-${i}.bin`, chunk);
    await delay(everyMs);
  }
  return mb;
}

export async function sleep(ms) {
  await delay(ms);
  return ms;
}

/** Starts a `sleep` grandchild and waits; returns never on its own within `ms`. */
export async function withChild(ms) {
  const child = spawn("sleep", [String(ms / 1000)], { stdio: "ignore" });
  await delay(ms);
  return child.pid;
}

export function fail(message) {
  const error = new RangeError(message);
  throw error;
}

/** Writes `text` to stderr. */
export function chatter(text) {
  process.stderr.write(`${text}\n`);
  return text;
}

export function crash() {
  process.stderr.write("about to crash\n");
  process.exit(3);
}

export function notJson() {
  return { big: 1n };
}
