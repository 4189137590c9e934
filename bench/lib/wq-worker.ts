// Real work_queue_worker processes and status queries for bench:wq, on 127.0.0.1.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A worker started by the bench. */
export interface BenchWorker {
  pid: number;
  /** Resolves once the process is gone. */
  exited: Promise<void>;
  /** SIGKILL if still running, then removes its directory. */
  stop(): Promise<void>;
}

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
  const child = spawn(
    "work_queue_worker",
    [
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
    { env, stdio: "ignore" },
  );
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => resolve()),
  );
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  return {
    pid: child.pid as number,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null)
        child.kill("SIGKILL");
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
