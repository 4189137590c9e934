// The unpack lock shared with runtime/envpack-run: a stale lock (holder gone, pid recycled, no
// pid written) is taken over; a live holder is waited for, boundedly, and named.

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withDirLock } from "../../packer/dir-lock.js";
import { tempDir } from "../helpers/temp-dir.js";

async function ownStartTime(): Promise<string> {
  const stat = await readFile(`/proc/${process.pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] as string;
}

/** A lock directory as another process left it, with `pid` as its pid file (none when undefined). */
async function staleLock(pid: string | undefined): Promise<string> {
  const lock = join(await tempDir("envpack-lock-"), "x.lock");
  await mkdir(lock);
  if (pid !== undefined) await writeFile(join(lock, "pid"), pid);
  return lock;
}

describe("withDirLock", () => {
  it("regression: a live holder is waited for at most timeoutMs, then ENVPACK_INPUT_CACHE_LOCKED names its pid", async () => {
    const lock = await staleLock(`${process.pid} ${await ownStartTime()}\n`);
    const error = await withDirLock(lock, async () => "ran", {
      timeoutMs: 200,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "ENVPACK_INPUT_CACHE_LOCKED",
      exitCode: 2,
      details: { lock, pid: process.pid },
    });
    expect(String((error as Error).message)).toContain(`pid ${process.pid}`);
  });

  it("regression: takes over a lock whose pid now names another process (recycled pid)", async () => {
    const lock = await staleLock(`${process.pid} 1\n`);
    expect(
      await withDirLock(lock, async () => "ran", { timeoutMs: 60_000 }),
    ).toBe("ran");
  });

  it("takes over a lock whose holder is gone", async () => {
    const lock = await staleLock("4194305\n");
    expect(
      await withDirLock(lock, async () => "ran", { timeoutMs: 60_000 }),
    ).toBe("ran");
  });

  it("regression: takes over a lock whose holder died before writing its pid", async () => {
    const lock = await staleLock(undefined);
    expect(
      await withDirLock(lock, async () => "ran", { timeoutMs: 60_000 }),
    ).toBe("ran");
  });

  it("writes its own pid and start time, as envpack-run reads them", async () => {
    const lock = join(await tempDir("envpack-lock-"), "x.lock");
    const seen = await withDirLock(lock, () =>
      readFile(join(lock, "pid"), "utf8"),
    );
    expect(seen).toBe(`${process.pid} ${await ownStartTime()}\n`);
  });
});
