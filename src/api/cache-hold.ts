// Builds and `cache gc` sharing one cache directory: a build holds the cache (shared) from its
// first look to its return, gc and `cache rm` take it (exclusive) while they remove. No gc then
// removes a blob, layer or fetched Node runtime between a build's check and its use, or before the
// build has handed its bundle out. A run (to its command's end), push, pull and a `pack: true`
// Executor (to its shutdown) hold it the same way.
//
// Under `<cache>/holds/`: a build creates `<pid>-<start>-<hex>.build` (its process's start time,
// as dir-lock records it, so a recycled pid is not taken for it), then looks for `gc.lock` (a
// dir-lock). A gc creates `gc.lock`, then waits until no live process has a `.build` file. Each
// side writes its own mark before it looks for the other's, so at least one of them sees the
// other: the build backs off (removes its file, waits for the gc, tries again), or the gc waits.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  realpathSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { InputError, isNotFound, namesIfPresent } from "../core/light.js";
import {
  isProcessAlive,
  processStartTime,
  readLockHolder,
  withDirLock,
} from "../../packer/light.js";

/** The directory of the marks, under the cache directory. */
export const HOLDS_DIR = "holds";
/** The exclusive lock's directory, under {@link HOLDS_DIR}. */
const GC_LOCK = "gc.lock";
const BUILD_MARK = /^(\d+)-(\d*)-[0-9a-f]+\.build$/;
const POLL_MS = 50;
/** A gc lock without a pid for this long lost its owner before it wrote one (as dir-lock's grace). */
const PID_GRACE_MS = 5_000;
const TIMEOUT_MS = 10 * 60_000;
/** Where a build cannot write its mark, it takes no hold (see holdCache). */
const UNWRITABLE = new Set([
  "EACCES",
  "EPERM",
  "EROFS",
  "ENOSPC",
  "ENOTDIR",
  "EEXIST",
]);

/** A build's shared hold on a cache directory. */
export interface CacheHold {
  /** Ends the hold; a gc waiting for it goes on. */
  release(): Promise<void>;
}

/**
 * Runs `body` holding the cache directory (see {@link holdCache}): what it reads, writes or runs
 * from the cache stays there until it returns.
 */
export async function withCacheHold<T>(
  cacheDir: string,
  signal: AbortSignal | undefined,
  body: () => Promise<T>,
): Promise<T> {
  const hold = await holdCache(cacheDir, signal);
  try {
    return await body();
  } finally {
    await hold.release();
  }
}

let ownStart: string | undefined;

/**
 * The directories this process holds, each with its mark and how many holds share it. A hold
 * taken inside another (a build inside a `pack: true` Executor's, a registry that is the cache
 * directory) shares the mark and never waits for a gc: the gc waits for that mark, so waiting for
 * it would wait forever (until the 10-minute timeout).
 */
const ownHolds = new Map<string, OwnHold>();

interface OwnHold {
  key: string;
  mark: string;
  count: number;
}

/**
 * Holds the cache directory for a build: waits while a `cache gc` or `cache rm` runs (at most 10
 * minutes), then keeps them waiting until {@link CacheHold.release}. A cache directory this
 * process cannot write is held by nobody: no hold is taken.
 * @throws InputError ENVPACK_INPUT_CACHE_LOCKED naming the gc's pid when the wait times out; the
 *   signal's reason on abort
 */
export async function holdCache(
  cacheDir: string,
  signal?: AbortSignal,
): Promise<CacheHold> {
  const dir = join(cacheDir, HOLDS_DIR);
  const held = ownHolds.get(heldKey(dir));
  if (held !== undefined) return shared(held);
  ownStart ??= (await processStartTime(process.pid)) ?? "";
  const mark = join(
    dir,
    `${process.pid}-${ownStart}-${randomBytes(6).toString("hex")}.build`,
  );
  const lock = join(dir, GC_LOCK);
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    signal?.throwIfAborted();
    // Single system calls, made synchronously: a cache hit pays microseconds for its hold.
    try {
      closeSync(openSync(mark, "w"));
    } catch (error) {
      if (isNotFound(error)) {
        try {
          mkdirSync(dir, { recursive: true });
          continue;
        } catch (mkdirError) {
          error = mkdirError;
        }
      }
      // The build meets the same error where it writes, and reports it naming the cache.
      if (UNWRITABLE.has((error as NodeJS.ErrnoException).code ?? ""))
        return { release: async () => {} };
      throw error;
    }
    const gc = await gcHolder(lock);
    if (gc === null) {
      // Another hold of this process may have taken the directory meanwhile: one mark serves.
      const key = heldKey(dir);
      const meanwhile = ownHolds.get(key);
      if (meanwhile !== undefined) {
        removeMark(mark);
        return shared(meanwhile);
      }
      const own = { key, mark, count: 0 };
      ownHolds.set(key, own);
      return shared(own);
    }
    removeMark(mark);
    if (Date.now() >= deadline)
      throw lockedError(lock, gc, "a cache gc or cache rm");
    await sleep(POLL_MS, undefined, { signal });
  }
}

/** The holds directory as {@link ownHolds} knows it: through links, as the file system does. */
function heldKey(dir: string): string {
  try {
    return realpathSync(dir);
  } catch (error) {
    if (isNotFound(error)) return resolve(dir);
    throw error;
  }
}

/** One more hold on `own`'s mark; the last one released removes it. */
function shared(own: OwnHold): CacheHold {
  own.count++;
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      if (--own.count > 0) return;
      ownHolds.delete(own.key);
      removeMark(own.mark);
    },
  };
}

function removeMark(mark: string): void {
  try {
    unlinkSync(mark);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/**
 * Runs `body` holding the cache directory exclusively: after any other gc or `cache rm`, and once
 * every build holding it ({@link holdCache}) has released it (at most 10 minutes each). Builds
 * starting meanwhile wait for `body`.
 * @throws InputError ENVPACK_INPUT_CACHE_LOCKED naming the holder's pid when a wait times out
 */
export async function withCacheExclusive<T>(
  cacheDir: string,
  body: () => Promise<T>,
): Promise<T> {
  const dir = join(cacheDir, HOLDS_DIR);
  await mkdir(dir, { recursive: true });
  return withDirLock(join(dir, GC_LOCK), async () => {
    await waitForBuilds(dir);
    return body();
  });
}

/** The pid of the live gc holding `lock`, its pid not written yet (0), or null when none does. */
async function gcHolder(lock: string): Promise<number | null> {
  const info = statSync(lock, { throwIfNoEntry: false });
  if (info === undefined) return null;
  const holder = await readLockHolder(lock);
  if (holder !== undefined) return holder.isAlive ? holder.pid : null;
  return Date.now() - info.mtimeMs < PID_GRACE_MS ? 0 : null;
}

/** Waits until no live process has a build mark in `dir`; removes the marks of dead ones. */
async function waitForBuilds(dir: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    let live: number | undefined;
    for (const name of await namesIfPresent(dir)) {
      const match = BUILD_MARK.exec(name);
      if (match === null) continue;
      const pid = Number(match[1]);
      if (await isProcessAlive(pid, match[2])) live ??= pid;
      else await rm(join(dir, name), { recursive: true, force: true });
    }
    if (live === undefined) return;
    if (Date.now() >= deadline)
      throw lockedError(
        join(dir, `${live}-*.build`),
        live,
        "a build, run or pull",
      );
    await sleep(POLL_MS);
  }
}

function lockedError(path: string, pid: number, what: string): InputError {
  return new InputError(
    "ENVPACK_INPUT_CACHE_LOCKED",
    `the cache is still held by ${what} (pid ${pid || "not written yet"}) after ${TIMEOUT_MS / 60_000} minutes`,
    {
      hint: `Wait for that process, or remove ${path} if no envpack is running.`,
      details: { lock: path, pid },
    },
  );
}
