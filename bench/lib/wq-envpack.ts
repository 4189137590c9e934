// envpack's side of bench:wq's pairs: no-op tasks through envpack's Work Queue manager on one
// real work_queue_worker: warm-up, all at once (timed, with the CPU they cost), then round trips.

import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Executor } from "../../src/index.js";
import { cpuPerTask, type Overhead } from "./wq-cmanager.js";
import { figuresOf, roundTrips, tally } from "./wq-tally.js";
import { startBenchWorker, type BenchWorker } from "./wq-worker.js";

export /** Tasks submitted at once, then round trips one after another. */
interface Counts {
  tasks: number;
  latencyCalls: number;
}

/** How envpack's run is set up: the executor's switches, the warm-up and the worker's size. */
export interface EnvpackRun {
  pack: boolean;
  monitor: boolean;
  warmup: number;
  worker: { cores: number; memory: number; disk: number };
}

/** The port of an executor's manager (its workers connect there). */
async function managerPort(executor: Executor): Promise<number> {
  const where = await executor.listening();
  if (where.port === undefined) throw new Error("bench:wq: no manager port");
  return where.port;
}

/** No-op tasks through envpack's manager: warm-up, all at once, then sequential round trips. */
export async function runEnvpack(
  mode: string,
  work: string,
  { tasks, latencyCalls }: Counts,
  makeCall: (executor: Executor) => () => Promise<unknown>,
  options: EnvpackRun,
): Promise<Overhead> {
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    pack: options.pack,
    monitor: options.monitor,
    cacheDir: join(work, "cache"),
  });
  let worker: BenchWorker | undefined;
  try {
    worker = await startBenchWorker({
      port: await managerPort(executor),
      ...options.worker,
    });
    const call = makeCall(executor);
    const warmup = tally();
    // Untimed: the worker joins, the bundle (if any) is built and sent.
    await warmup.settleAll(options.warmup, call);
    const timed = tally();
    const workerAtStart = await worker.cpuNow();
    const managerAtStart = process.cpuUsage();
    const start = performance.now();
    await timed.settleAll(tasks, call);
    const seconds = (performance.now() - start) / 1000;
    const managerUsed = process.cpuUsage(managerAtStart);
    const workerAtEnd = await worker.cpuNow();
    const trips = await roundTrips(latencyCalls, call);
    await executor.shutdown();
    return {
      ...figuresOf({ mode, tasks, seconds, warmup, timed, trips }),
      cpu: cpuPerTask(
        workerAtStart === undefined || workerAtEnd === undefined
          ? undefined
          : workerAtEnd - workerAtStart,
        (managerUsed.user + managerUsed.system) / 1e6,
        tasks,
      ),
    };
  } finally {
    await executor.shutdown();
    await worker?.stop();
  }
}
