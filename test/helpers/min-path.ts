// A PATH for "worker" tests: a bin directory with only the tools a worker is promised.

import { mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { tempDir } from "./temp-dir.js";

/** What runtime/envpack-run may use: POSIX sh and awk, GNU tar, zstd and coreutils. No node, no python. */
const WORKER_TOOLS = [
  "sh",
  "awk",
  "tar",
  "zstd",
  "sha256sum",
  "cut",
  "head",
  "grep",
  "mkdir",
  "mkfifo",
  "mktemp",
  "tr",
  "mv",
  "cp",
  "ln",
  "chmod",
  "tail",
  "rm",
  "cat",
  "basename",
  "dirname",
  "id",
  "sleep",
  "env",
  "ls",
  "pwd",
];

/** A fresh directory holding symlinks to exactly the worker tools, to use as the whole PATH. */
export async function workerPath(): Promise<string> {
  const bin = join(await tempDir("envpack-minpath-"), "bin");
  await mkdir(bin);
  for (const tool of WORKER_TOOLS) {
    const { stdout } = await execa("sh", ["-c", `command -v ${tool}`]);
    await symlink(stdout.trim(), join(bin, tool));
  }
  return bin;
}
