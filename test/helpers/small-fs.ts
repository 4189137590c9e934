// A real small or read-only file system for fault tests: a tmpfs mounted on a test's directory
// (the suite runs as root, as CI does).

import { mkdir } from "node:fs/promises";
import { execa } from "execa";

/**
 * Mounts a tmpfs of `sizeBytes` on `dir` (created when missing), read-only when asked, runs
 * `body`, and unmounts whatever happened.
 */
export async function withTmpfs<T>(
  dir: string,
  options: { sizeBytes: number; readOnly?: boolean },
  body: () => Promise<T>,
): Promise<T> {
  await mkdir(dir, { recursive: true });
  const flags = [
    `size=${options.sizeBytes}`,
    ...(options.readOnly ? ["ro"] : []),
  ];
  await execa("mount", ["-t", "tmpfs", "-o", flags.join(","), "tmpfs", dir]);
  try {
    return await body();
  } finally {
    await execa("umount", [dir]);
  }
}
