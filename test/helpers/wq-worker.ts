// Real work_queue_worker processes for tests: started on 127.0.0.1 in their own work directory,
// torn down by PID after the test (and any task process they left, found by its cwd).

import { spawn, type ChildProcess } from "node:child_process";
import { readdir, readlink } from "node:fs/promises";
import { join, sep } from "node:path";
import { execa } from "execa";
import { afterEach } from "vitest";
import { tempDir } from "./temp-dir.js";

export interface TestWorker {
  pid: number;
  child: ChildProcess;
  /** The worker's --workdir (its workspace is a worker-UID-PID directory inside). */
  dir: string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<number | string>;
  /** What it printed (stdout and stderr). */
  output(): string;
}

const running = new Set<TestWorker>();

afterEach(async () => {
  const workers = [...running];
  running.clear();
  for (const worker of workers) {
    try {
      process.kill(worker.pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
  await Promise.all(workers.map((w) => w.exited));
  for (const worker of workers) await killUnder(worker.dir);
});

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  /** The manager's port on 127.0.0.1; or give `project`. */
  port?: number;
  /** Find the manager through a catalog instead (`-M NAME --catalog HOST:PORT`). */
  project?: { name: string; catalog: string };
  cores: number;
  memory?: number;
  disk?: number;
  /** Exit after the first connection ends (default true). */
  singleShot?: boolean;
  password?: string;
  /** More worker flags. */
  args?: string[];
  /** The whole environment (default: this process's, minus the variables the worker reads). */
  env?: NodeJS.ProcessEnv;
  /**
   * A program the worker runs under, with its arguments (e.g. strace injecting a fault); `pid`
   * is then that program's, and teardown finds the worker by its working directory.
   */
  wrap?: string[];
}

/** Starts `work_queue_worker 127.0.0.1 PORT` (or `-M NAME`) with the given size. */
export async function startWorker(options: WorkerOptions): Promise<TestWorker> {
  const dir = await tempDir("envpack-wq-worker-");
  const args = [
    ...(options.project === undefined
      ? ["127.0.0.1", String(options.port)]
      : ["-M", options.project.name, "--catalog", options.project.catalog]),
    "--cores",
    String(options.cores),
    "--memory",
    String(options.memory ?? 1000),
    "--disk",
    String(options.disk ?? 2000),
    "--timeout",
    "120",
    "--workdir",
    dir,
    ...(options.singleShot === false ? [] : ["--single-shot"]),
    ...(options.password === undefined ? [] : ["--password", options.password]),
    ...(options.args ?? []),
  ];
  const env = options.env ?? { ...process.env };
  // The worker takes these as its defaults (§12.12).
  for (const key of ["CORES", "MEMORY", "DISK", "GPUS"]) delete env[key];
  // Found on this process's PATH: the worker's own PATH may be a bare one.
  const command = [...(options.wrap ?? []), await workerBinary(), ...args];
  const child = spawn(command[0] as string, command.slice(1), {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "")),
  );
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  const worker: TestWorker = {
    pid: child.pid as number,
    child,
    dir,
    exited,
    output: () => output,
  };
  running.add(worker);
  return worker;
}

let binary: Promise<string> | undefined;

function workerBinary(): Promise<string> {
  binary ??= execa("sh", ["-c", "command -v work_queue_worker"]).then((r) =>
    r.stdout.trim(),
  );
  return binary;
}

/** Pids of the processes whose working directory is inside `dir`. */
export async function processesUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cwd = await readlink(join("/proc", name, "cwd"));
      if (cwd === dir || cwd.startsWith(dir + sep)) pids.push(Number(name));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "EACCES" && code !== "ESRCH")
        throw error;
    }
  }
  return pids;
}

async function killUnder(dir: string): Promise<void> {
  for (const pid of await processesUnder(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
}

/**
 * The processes left under `dir` once they had a moment to go (a killed task's watcher needs one
 * wake-up): checked until none is left or `ms` have passed.
 */
export async function processesLeftUnder(
  dir: string,
  ms = 10_000,
): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const pids = await processesUnder(dir);
    if (pids.length === 0 || Date.now() > deadline) return pids;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
