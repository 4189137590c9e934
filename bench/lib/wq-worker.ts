// Real work_queue_worker processes and status queries for bench:wq, on 127.0.0.1.

import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A worker started by the bench. */
export interface BenchWorker {
  pid: number;
  /** Resolves once the process is gone. */
  exited: Promise<void>;
  /**
   * CPU seconds of the worker and every process under it (its tasks), read by the shell that
   * reaped it (`cutime + cstime`); resolves once it exited, undefined if that was not read.
   */
  cpuSeconds: Promise<number | undefined>;
  /**
   * CPU seconds so far of the worker and of the task processes it has reaped (its /proc stat:
   * utime, stime, cutime, cstime), or undefined once it is gone.
   */
  cpuNow(): Promise<number | undefined>;
  /** SIGKILL if still running (the worker's whole group), then removes its directory. */
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc/PID/stat on Linux (USER_HZ). */
const USER_HZ = 100;

/** Starts `work_queue_worker 127.0.0.1 PORT` (single shot) with the given size, in a fresh directory. */
export async function startBenchWorker(options: {
  port: number;
  cores: number;
  memory?: number;
  disk?: number;
}): Promise<BenchWorker> {
  const dir = await mkdtemp(join(tmpdir(), "envpack-bench-wq-worker-"));
  const env = { ...process.env };
  // The worker takes these as its defaults.
  for (const key of ["CORES", "MEMORY", "DISK", "GPUS"]) delete env[key];
  // A shell runs the worker and, once it has reaped it, prints its own /proc stat: its children's
  // CPU times (fields 16 and 17) are the worker's and its tasks'.
  const child = spawn(
    "/bin/sh",
    [
      "-c",
      'work_queue_worker "$@"; read -r l </proc/$$/stat; echo "$l"',
      "sh",
      "127.0.0.1",
      String(options.port),
      "--cores",
      String(options.cores),
      "--memory",
      String(options.memory ?? 1000),
      "--disk",
      String(options.disk ?? 2000),
      "--single-shot",
      "--timeout",
      "120",
      "--workdir",
      dir,
    ],
    { env, stdio: ["ignore", "pipe", "ignore"], detached: true },
  );
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once("close", () => resolve()),
  );
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  const cpuSeconds = exited.then(() => {
    // "pid (sh) S ppid …": fields after the command name, 16 and 17 overall.
    const fields = out.trim().split(") ")[1]?.split(" ") ?? [];
    const cutime = Number(fields[16 - 3]);
    const cstime = Number(fields[17 - 3]);
    return Number.isFinite(cutime + cstime)
      ? (cutime + cstime) / USER_HZ
      : undefined;
  });
  return {
    pid: child.pid as number,
    exited,
    cpuSeconds,
    async cpuNow() {
      const shell = child.pid as number;
      let children: string;
      try {
        children = await readFile(
          `/proc/${shell}/task/${shell}/children`,
          "utf8",
        );
        const worker = children.trim().split(" ")[0];
        if (worker === undefined || worker === "") return undefined;
        const stat = await readFile(`/proc/${worker}/stat`, "utf8");
        // Fields 14–17 (utime stime cutime cstime), counted after the ") " closing the name.
        const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
        return [11, 12, 13, 14].reduce((n, i) => n + Number(f[i]), 0) / USER_HZ;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT")
          return undefined;
        throw error;
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null)
        try {
          process.kill(-(child.pid as number), "SIGKILL");
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
        }
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Sends one status request (`queue_status`, `worker_status`, …) to a manager's port; returns its JSON array. */
export async function queryStatus(
  port: number,
  request: string,
): Promise<Record<string, unknown>[]> {
  const socket = connect(port, "127.0.0.1");
  socket.write(`${request}\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString()) as Record<
    string,
    unknown
  >[];
}
