// bench:wq's bundle section: a module app whose bundle is ~40 MB, run with pack: true on three
// real work_queue_workers: the bytes sent to each worker (one bundle each, however many tasks)
// and the time to each worker's first result.

import { mkdir, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { build, Executor, type EnvpackEvent } from "../../src/index.js";
import { tally } from "./wq-tally.js";
import {
  queryStatus,
  startBenchWorker,
  type BenchWorker,
} from "./wq-worker.js";

export const BUNDLE_BYTES = 40_000_000;
export const BUNDLE_WORKERS = 3;
const BUNDLE_ROUNDS = 2;

/** Per worker of the bundle run: what was sent to it and when its first result came back. */
export interface BundleWorker {
  bytesSent: number;
  bundlesSent: number;
  tasks: number;
  firstResultSeconds: number;
}

export interface BundleRun {
  bundleBytes: number;
  tasks: number;
  failed: number;
  firstFailure?: string | undefined;
  workers: BundleWorker[];
}

/**
 * A module app whose bundle is ~{@link BUNDLE_BYTES}: the exec-tasks app's noop next to a file of
 * random bytes it reads by `new URL(…, import.meta.url)` (incompressible, so the bundle keeps its size).
 */
async function bigApp(work: string, baseBytes: number): Promise<string> {
  const dir = join(work, "big-app");
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "bench-wq-big", private: true, type: "module" }),
  );
  await writeFile(
    join(dir, "blob.bin"),
    randomBytes(Math.max(1_000_000, BUNDLE_BYTES - baseBytes)),
  );
  const entry = join(dir, "big.mjs");
  await writeFile(
    entry,
    [
      'import { statSync } from "node:fs";',
      'const blob = new URL("./blob.bin", import.meta.url);',
      "export function size() {",
      "  return statSync(blob).size;",
      "}",
      "",
    ].join("\n"),
  );
  return entry;
}

/** Three workers, {@link BUNDLE_ROUNDS} rounds of one task per worker on the ~40 MB bundle. */
export async function runBundle(
  work: string,
  noopEntry: string,
): Promise<BundleRun> {
  const cacheDir = join(work, "cache");
  const base = await build({ entries: [noopEntry], cacheDir });
  const entry = await bigApp(work, base.size);
  const bundle = await build({ entries: [entry], cacheDir });
  const firstResult = new Map<string, number>();
  const done = new Map<string, number>();
  let start = 0;
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    pack: true,
    cacheDir,
    onEvent: (event: EnvpackEvent) => {
      if (
        event.type !== "task:state" ||
        event.state !== "done" ||
        event.workerId === undefined
      )
        return;
      // A warm runtime is one Work Queue task for many: the worker's own count says 1.
      done.set(event.workerId, (done.get(event.workerId) ?? 0) + 1);
      if (!firstResult.has(event.workerId))
        firstResult.set(event.workerId, (performance.now() - start) / 1000);
    },
  });
  const workers: BenchWorker[] = [];
  try {
    const { port } = await executor.listening();
    if (port === undefined) throw new Error("bench:wq: no manager port");
    for (let i = 0; i < BUNDLE_WORKERS; i++)
      workers.push(
        await startBenchWorker({ port, cores: 1, memory: 1000, disk: 4000 }),
      );
    // Every worker joins before the first task, so each gets one per round.
    while (
      ((await queryStatus(port, "queue_status"))[0]?.workers as number) <
      BUNDLE_WORKERS
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const size = executor.app<[], number>(entry, "size", {
      resources: { cores: 1 },
    });
    const failures = tally();
    start = performance.now();
    for (let round = 0; round < BUNDLE_ROUNDS; round++)
      await failures.settleAll(BUNDLE_WORKERS, size);
    const status = await queryStatus(port, "worker_status");
    return {
      bundleBytes: bundle.size,
      tasks: BUNDLE_WORKERS * BUNDLE_ROUNDS,
      failed: failures.count,
      firstFailure: failures.first,
      workers: status.map((w) => {
        const bytes = w.total_bytes_transferred as number;
        const id = w.worker_id as string | undefined;
        return {
          bytesSent: bytes,
          bundlesSent: bytes / bundle.size,
          tasks: (id === undefined ? undefined : done.get(id)) ?? 0,
          firstResultSeconds:
            (id === undefined ? undefined : firstResult.get(id)) ?? NaN,
        };
      }),
    };
  } finally {
    await executor.shutdown();
    await Promise.all(workers.map((w) => w.stop()));
  }
}
