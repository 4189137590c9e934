// What a process tree uses right now, read from /proc (Linux): resident memory and CPU time of
// the process and all its descendants, and the bytes under a directory.

import { readFileSync, readdirSync } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { isNotFound } from "../../core/light.js";

const PAGE = 4096;
/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. */
const TICKS_PER_SECOND = 100;

/** The process and its descendants (each thread's `children` file lists the children it forked). */
export function treeOf(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    out.push(p);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch (error) {
      // Gone already: nothing to count.
      if (isGone(error)) continue;
      throw error;
    }
    for (const task of tasks) {
      const text = readOr(`/proc/${p}/task/${task}/children`);
      for (const child of text.split(" "))
        if (child.trim()) stack.push(Number(child));
    }
  }
  return out;
}

/** Resident MB and CPU ms (own plus waited-for children) of a process tree; zeros once it is gone. */
export function sampleTree(pid: number): { rssMB: number; cpuMs: number } {
  let pages = 0;
  let ticks = 0;
  for (const p of treeOf(pid)) {
    const statm = readOr(`/proc/${p}/statm`).split(" ");
    pages += Number(statm[1] ?? 0) || 0;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14 … cstime 17.
    const stat = readOr(`/proc/${p}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    for (const i of [11, 12, 13, 14]) ticks += Number(fields[i] ?? 0) || 0;
  }
  return {
    rssMB: (pages * PAGE) / 1048576,
    cpuMs: (ticks * 1000) / TICKS_PER_SECOND,
  };
}

/**
 * CPU ms one process has used so far, with its waited-for children as {@link sampleTree} counts
 * them (0 once it is gone): the baseline of a warm runtime's task, so that children an earlier
 * task started are not charged to this one.
 */
export function cpuOf(pid: number): number {
  const stat = readOr(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  let ticks = 0;
  for (const i of [11, 12, 13, 14]) ticks += Number(fields[i] ?? 0) || 0;
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** Bytes of the regular files under `dir` (not following links); 0 when it is gone. */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (error) {
    if (isNotFound(error)) return 0;
    throw error;
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    try {
      total += (await lstat(join(entry.parentPath, entry.name))).blocks * 512;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  return total;
}

/** A /proc file's text, or "" when the process has gone (a race the sampler expects). */
function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (isGone(error)) return "";
    throw error;
  }
}

/** A /proc read that failed because the process has exited meanwhile. */
function isGone(error: unknown): boolean {
  return isNotFound(error) || (error as NodeJS.ErrnoException).code === "ESRCH";
}
