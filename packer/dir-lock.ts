// A lock shared with runtime/envpack-run: a directory created atomically, holding its owner's pid;
// a lock whose owner has died is taken over.

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Runs `body` while holding the lock directory `path` (created by mkdir, as the sh runner does).
 * Waits for a live holder; removes the lock of a holder that no longer runs.
 */
export async function withDirLock<T>(
  path: string,
  body: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (;;) {
    signal?.throwIfAborted();
    try {
      await mkdir(path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = Number.parseInt(
      await readFile(join(path, "pid"), "utf8").catch(() => ""),
      10,
    );
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) {
      await rm(path, { recursive: true, force: true });
      continue;
    }
    await sleep(50, undefined, { signal });
  }
  try {
    await writeFile(join(path, "pid"), `${process.pid}\n`);
    return await body();
  } finally {
    await rm(path, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
