// Debian's C Work Queue manager (bench/peers/wq-cmanager.py, python3-workqueue) with real
// work_queue_workers on 127.0.0.1: no-op command tasks, the peer of envpack's manager in bench:wq.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { repoRoot } from "./fixtures.js";
import type { Throughput } from "./stats.js";
import type { Failures } from "./wq-tally.js";
import { startBenchWorker, type BenchWorker } from "./wq-worker.js";

/** Debian's interpreter has python3-workqueue; the python3 first on PATH may not. */
export const C_PYTHON = "/usr/bin/python3";

/** A {@link Throughput} with the CPU it cost and the tasks that failed. */
export interface Overhead extends Throughput, Failures {
  /** CPU per task of the timed tasks (submitted at once), ms. */
  cpu?: { workerMs: number; managerMs: number } | undefined;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

/** CPU ms per task: the workers and their task processes, and the manager. */
export function cpuPerTask(
  workerSeconds: number | undefined,
  managerSeconds: number,
  tasks: number,
): Overhead["cpu"] {
  if (workerSeconds === undefined) return undefined;
  return {
    workerMs: (workerSeconds * 1000) / tasks,
    managerMs: (managerSeconds * 1000) / tasks,
  };
}

/** What {@link runCManager} runs. */
export interface CManagerRun {
  /** Every task in resource_monitor (the C manager's monitoring). */
  monitor: boolean;
  tasks: number;
  latencyCalls: number;
  warmup: number;
  /** How many workers, each of this size. */
  workers: number;
  worker: { cores: number; memory: number; disk: number };
}

/** The C manager running `true` commands (1 core each) on `workers` fresh workers. */
export async function runCManager(
  run: CManagerRun,
): Promise<Outcome<Overhead>> {
  const script = join(repoRoot(), "bench", "peers", "wq-cmanager.py");
  // The C manager binds the first free port from TCP_LOW_PORT up (on every interface: its API
  // has no bind address); a random base keeps parallel runs apart. Workers connect via 127.0.0.1.
  const low = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(
    C_PYTHON,
    [
      script,
      "--tasks",
      String(run.tasks),
      "--latency-calls",
      String(run.latencyCalls),
      "--warmup",
      String(run.warmup),
      "--workers",
      String(run.workers),
      ...(run.monitor ? ["--monitor"] : []),
    ],
    {
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        ...process.env,
        TCP_LOW_PORT: String(low),
        TCP_HIGH_PORT: String(low + 2000),
      },
    },
  );
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-2000);
  });
  const exited = once(child, "exit");
  const lines: string[] = [];
  const reader = createInterface({ input: child.stdout });
  const workers: BenchWorker[] = [];
  try {
    // The workers' CPU at the peer's marks around the timed tasks (it waits for an answer).
    const marks: Array<number | undefined> = [];
    for await (const line of reader) {
      if (lines.length > 0 && line.startsWith('{"phase"')) {
        const cpu = await Promise.all(workers.map((w) => w.cpuNow()));
        marks.push(
          cpu.some((s) => s === undefined)
            ? undefined
            : cpu.reduce((a = 0, b = 0) => a + b, 0),
        );
        child.stdin.write("\n");
        continue;
      }
      lines.push(line);
      if (lines.length === 1) {
        const { port } = JSON.parse(line) as { port: number };
        for (let i = 0; i < run.workers; i++)
          workers.push(await startBenchWorker({ port, ...run.worker }));
      }
    }
    const [code] = (await exited) as [number | null];
    if (code !== 0 || lines.length < 2) {
      const tail = stderr.trim().split("\n").slice(-3).join(" | ");
      return {
        ok: false,
        reason: `${C_PYTHON} wq-cmanager.py failed (exit ${code}): ${tail} — install python3-workqueue (scripts/system-deps.sh)`,
      };
    }
    const peer = JSON.parse(lines[lines.length - 1] as string) as Omit<
      Overhead,
      "mode" | "firstFailure"
    > & { timedCpuSeconds: number; firstFailure: string | null };
    const [before, after] = marks;
    return {
      ok: true,
      value: {
        mode: `Debian C manager${run.monitor ? " (resource_monitor)" : ""}`,
        ...peer,
        firstFailure: peer.firstFailure ?? undefined,
        cpu: cpuPerTask(
          before === undefined || after === undefined
            ? undefined
            : after - before,
          peer.timedCpuSeconds,
          peer.tasks,
        ),
      },
    };
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.stop()));
  }
}
