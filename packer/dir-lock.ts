// A lock shared with runtime/envpack-run: a directory created atomically, holding its owner's pid
// and that process's start time (`<pid> <start>`, from /proc/<pid>/stat). A lock whose owner has
// died, whose pid now names another process, or that never got its pid file is taken over.

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { InputError, isNotFound, processRuns } from "../src/core/light.js";

/** Who holds a lock, as its pid file says. */
export interface LockHolder {
  pid: number;
  /** False when the pid is gone or now names a process started at another time. */
  isAlive: boolean;
}

/** Options of {@link withDirLock}. */
export interface DirLockOptions {
  signal?: AbortSignal | undefined;
  /** How long to wait for a live holder before giving up; default 10 minutes (as envpack-run). */
  timeoutMs?: number | undefined;
  /** Called once when the lock is still held after 10 s of waiting. */
  onWait?: ((holder: LockHolder | undefined) => void) | undefined;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
/** A lock directory without a readable pid for this long lost its owner before it wrote one. */
const PID_GRACE_MS = 5_000;
const POLL_MS = 50;
const NOTICE_AFTER_MS = 10_000;

/**
 * Runs `body` while holding the lock directory `path` (created by mkdir, as the sh runner does).
 * Waits for a live holder, at most `timeoutMs`; removes the lock of a holder that is gone.
 * @throws InputError ENVPACK_INPUT_CACHE_LOCKED naming the holder's pid when the wait times out;
 *   the signal's reason on abort
 */
export async function withDirLock<T>(
  path: string,
  body: () => Promise<T>,
  options: DirLockOptions = {},
): Promise<T> {
  const { signal } = options;
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  let noticed = false;
  let pidMissingSince: number | undefined;
  for (;;) {
    signal?.throwIfAborted();
    try {
      await mkdir(path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = await readLockHolder(path);
    const now = Date.now();
    if (holder === undefined) {
      pidMissingSince ??= now;
      if (now - pidMissingSince >= PID_GRACE_MS) {
        await rm(path, { recursive: true, force: true });
        pidMissingSince = undefined;
        continue;
      }
    } else if (!holder.isAlive) {
      await rm(path, { recursive: true, force: true });
      continue;
    } else {
      pidMissingSince = undefined;
    }
    if (now >= deadline) {
      const who =
        holder === undefined
          ? "a process that wrote no pid"
          : `pid ${holder.pid}`;
      throw new InputError(
        "ENVPACK_INPUT_CACHE_LOCKED",
        `${path} is still held by ${who} after ${Math.round((now - started) / 1000)} s`,
        {
          hint: `Wait for that process, or remove ${path} if no envpack or envpack-run is running.`,
          details: { lock: path, pid: holder?.pid },
        },
      );
    }
    if (!noticed && now - started >= NOTICE_AFTER_MS) {
      noticed = true;
      options.onWait?.(holder);
    }
    await sleep(POLL_MS, undefined, { signal });
  }
  try {
    const start = (await processStartTime(process.pid)) ?? "";
    await writeFile(join(path, "pid"), `${process.pid} ${start}\n`);
    return await body();
  } finally {
    await rm(path, { recursive: true, force: true });
  }
}

/**
 * The holder of the lock directory `path`, or undefined when it has no readable pid (absent, or
 * not written yet).
 */
export async function readLockHolder(
  path: string,
): Promise<LockHolder | undefined> {
  let text: string;
  try {
    text = await readFile(join(path, "pid"), "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const [pidText, start] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { pid, isAlive: await isProcessAlive(pid, start) };
}

/**
 * Whether the process `pid` runs and, when `start` is given (its {@link processStartTime}), is
 * the one that started then rather than a process that got its pid later.
 */
export async function isProcessAlive(
  pid: number,
  start: string | undefined,
): Promise<boolean> {
  if (!processRuns(pid)) return false;
  // A recycled pid names a process that started at another time.
  if (start === undefined || start === "") return true;
  const now = await processStartTime(pid);
  return now === undefined || now === start;
}

/**
 * Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined where there
 * is no /proc. The command name (field 2) may hold spaces and parentheses: fields are counted
 * after its last `)`.
 */
export async function processStartTime(
  pid: number,
): Promise<string | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    if (isNotFound(error) || (error as NodeJS.ErrnoException).code === "ESRCH")
      return undefined;
    throw error;
  }
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}
