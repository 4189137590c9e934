// Package trees dated as an install leaves them: npm's tarballs carry this time, and a walk vouches
// only for entries changed before its own clock tick (package-tree.ts, voidRacyTimes).

import { lstat, lutimes, readdir } from "node:fs/promises";
import { join } from "node:path";

export const INSTALLED = new Date("1985-10-26T08:15:00Z");

/** Sets the times of `root` and of every entry under it (links themselves, not their targets). */
export async function dateAsInstalled(
  root: string,
  when: Date = INSTALLED,
): Promise<void> {
  if ((await lstat(root)).isDirectory())
    for (const name of await readdir(root))
      await dateAsInstalled(join(root, name), when);
  await lutimes(root, when, when);
}
