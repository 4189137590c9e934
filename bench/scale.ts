// `npm run bench:scale`: the task engine and its scheduler at cluster scale, without sockets or
// processes. 100,000 queued tasks of mixed shapes run on 10, 100 and 1,000 simulated workers of
// mixed sizes (simulated time: a task "runs" for its duration, then its result comes back). Prints,
// at each size, the dispatch cost per task (real time spent by engine + scheduler + the simulation
// around them, per task), the memory per queued task, and the makespan against its lower bound.

import { performance } from "node:perf_hooks";
import {
  TASK_PROTOCOL,
  type ResourceSpec,
  type Resources,
  type TaskResult,
  type TaskSpec,
} from "../src/core/index.js";
import {
  TaskEngine,
  labelOn,
  type BackendListener,
  type ExecBackend,
  type Placement,
  type WorkerInfo,
} from "../src/exec/index.js";
import { ratio } from "./lib/stats.js";
import { formatTable, ratioText, wantsJson } from "./lib/table.js";
import { seededRandom } from "./lib/seeded-random.js";

const TASKS = 100_000;
/** Worker counts; `BENCH_SCALE_SIZES=10,1000` runs others (the first is the reference). */
const SIZES = (process.env["BENCH_SCALE_SIZES"] ?? "10,100,1000")
  .split(",")
  .map(Number);
const SEED = 7;
/** Runs per size; the cost is their median (the machine is shared: one run can be slowed). */
const REPEATS = Number(process.env["BENCH_SCALE_REPEATS"] ?? 3);
const TARGET_COST_RATIO = 2;
const TARGET_BYTES_PER_TASK = 2048;
const TARGET_MAKESPAN = 1.1;
/** Worker sizes in cores, cycled; every worker has 4000 MB and 10,000 MB of disk per core. */
const WORKER_CORES = [2, 4, 8, 16, 32];
const MEMORY_PER_CORE = 4000;
const DISK_PER_CORE = 10_000;
/** Task shapes and their weights. */
const SHAPES: Array<{ spec: ResourceSpec; weight: number }> = [
  { spec: { cores: 1, memory: 1000 }, weight: 40 },
  { spec: { cores: 2, memory: 4000 }, weight: 25 },
  { spec: { cores: 4, memory: 8000 }, weight: 15 },
  { spec: { cores: 1, memory: 6000 }, weight: 10 },
  { spec: { cores: 8, memory: 16000 }, weight: 5 },
  { spec: { cores: 2, memory: 2000 }, weight: 5 },
];
/** Simulated durations: uniform in [1, 4) s. */
const MIN_SECONDS = 1;
const MAX_SECONDS = 4;

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Workload {
  shape: Uint8Array;
  seconds: Float64Array;
}

function workload(): Workload {
  const next = seededRandom(SEED);
  const total = SHAPES.reduce((n, s) => n + s.weight, 0);
  const shape = new Uint8Array(TASKS);
  const seconds = new Float64Array(TASKS);
  for (let i = 0; i < TASKS; i++) {
    let pick = next() * total;
    let s = 0;
    while (pick >= (SHAPES[s]?.weight ?? 0)) pick -= SHAPES[s++]?.weight ?? 0;
    shape[i] = s;
    seconds[i] = MIN_SECONDS + next() * (MAX_SECONDS - MIN_SECONDS);
  }
  return { shape, seconds };
}

function workers(n: number): WorkerInfo[] {
  return Array.from({ length: n }, (_, i) => {
    const cores = WORKER_CORES[i % WORKER_CORES.length] as number;
    return {
      id: `w${i}`,
      resources: {
        cores,
        memory: cores * MEMORY_PER_CORE,
        disk: cores * DISK_PER_CORE,
        gpus: 0,
      },
    };
  });
}

/** A binary min-heap of pending task ends by simulated time. */
class Ends {
  readonly #time: number[] = [];
  readonly #done: Array<() => void> = [];

  get size(): number {
    return this.#time.length;
  }

  get first(): number {
    return this.#time[0] as number;
  }

  push(time: number, done: () => void): void {
    const t = this.#time;
    const d = this.#done;
    let i = t.length;
    t.push(time);
    d.push(done);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((t[parent] as number) <= time) break;
      t[i] = t[parent] as number;
      d[i] = d[parent] as () => void;
      i = parent;
    }
    t[i] = time;
    d[i] = done;
  }

  pop(): () => void {
    const t = this.#time;
    const d = this.#done;
    const top = d[0] as () => void;
    const lastTime = t.pop() as number;
    const lastDone = d.pop() as () => void;
    if (t.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= t.length) break;
        const r = l + 1;
        const c = r < t.length && (t[r] as number) < (t[l] as number) ? r : l;
        if ((t[c] as number) >= lastTime) break;
        t[i] = t[c] as number;
        d[i] = d[c] as () => void;
        i = c;
      }
      t[i] = lastTime;
      d[i] = lastDone;
    }
    return top;
  }
}

/** Workers that run nothing: a placed task ends after its duration in simulated time. */
class SimBackend implements ExecBackend {
  readonly ends = new Ends();
  now = 0;
  listener: BackendListener | undefined;
  #usage = { peakMemory: 0, cores: 0, disk: 0, wallMs: 0, cpuMs: 0 };

  constructor(readonly seconds: Float64Array) {}

  async start(listener: BackendListener): Promise<void> {
    this.listener = listener;
  }

  runTask(
    task: TaskSpec,
    placement: Placement,
    _signal: AbortSignal,
  ): Promise<TaskResult> {
    const index = Number(task.id.slice(1)) - 1;
    const seconds = this.seconds[index] as number;
    return new Promise((resolve) =>
      this.ends.push(this.now + seconds, () =>
        resolve({
          protocol: TASK_PROTOCOL,
          id: task.id,
          ok: true,
          reason: "ok",
          value: null,
          durationMs: seconds * 1000,
          usage: this.#usage,
          workerId: placement.workerId,
          label: placement.label,
          attempt: task.attempt,
        }),
      ),
    );
  }

  async shutdown(): Promise<void> {}
}

interface SizeResult {
  workers: number;
  cores: number;
  tasks: number;
  dispatchSeconds: number;
  costPerTaskUs: number;
  bytesPerQueuedTask: number;
  makespanSeconds: number;
  lowerBoundSeconds: number;
  makespanRatio: number;
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

/**
 * The lower bound of the makespan: the longest task, and for each resource the work it needs
 * (Σ label × duration) over the pool's total. Every worker has the same memory and disk per core,
 * so a task's label (proportional rule included) is the same on every worker.
 */
function lowerBound(load: Workload, pool: WorkerInfo[]): number {
  const reference = (pool[0] as WorkerInfo).resources;
  const labels = SHAPES.map((s) => labelOn(s.spec, reference));
  const keys = ["cores", "memory", "disk"] as const;
  const area: Record<(typeof keys)[number], number> = {
    cores: 0,
    memory: 0,
    disk: 0,
  };
  let longest = 0;
  for (let i = 0; i < TASKS; i++) {
    const label = labels[load.shape[i] as number] as Resources;
    const s = load.seconds[i] as number;
    for (const k of keys) area[k] += label[k] * s;
    longest = Math.max(longest, s);
  }
  let bound = longest;
  for (const k of keys) {
    const capacity = pool.reduce((n, w) => n + w.resources[k], 0);
    bound = Math.max(bound, area[k] / capacity);
  }
  return bound;
}

async function runSize(load: Workload, size: number): Promise<SizeResult> {
  const pool = workers(size);
  const backend = new SimBackend(load.seconds);
  const engine = new TaskEngine({ backend });
  await engine.start();
  const payload = { kind: "module", module: "/app.mjs", exportName: "f" };
  const before = heapUsed();
  const calls: Array<Promise<TaskResult>> = new Array(TASKS);
  for (let i = 0; i < TASKS; i++)
    calls[i] = engine.submit({
      name: "app",
      category: "app",
      // Each call its own payload and arguments, as real calls have.
      payload: { ...payload, kind: "module", args: [i] },
      resources: (SHAPES[load.shape[i] as number] as { spec: ResourceSpec })
        .spec,
    });
  const bytesPerQueuedTask = (heapUsed() - before) / TASKS;
  const started = performance.now();
  for (const w of pool) backend.listener?.workerJoined(w);
  let makespan = 0;
  while (backend.ends.size > 0) {
    const now = backend.ends.first;
    backend.now = now;
    makespan = now;
    while (backend.ends.size > 0 && backend.ends.first === now)
      backend.ends.pop()();
    // The engine's reactions to these results (and the placements they make) run now.
    await Promise.resolve();
  }
  const dispatchSeconds = (performance.now() - started) / 1000;
  const counts = engine.counts();
  if (counts.done !== TASKS)
    throw new Error(
      `bench:scale: ${counts.done} of ${TASKS} tasks finished on ${size} workers`,
    );
  await Promise.all(calls);
  const bound = lowerBound(load, pool);
  return {
    workers: size,
    cores: pool.reduce((n, w) => n + w.resources.cores, 0),
    tasks: TASKS,
    dispatchSeconds,
    costPerTaskUs: (dispatchSeconds * 1e6) / TASKS,
    bytesPerQueuedTask,
    makespanSeconds: makespan,
    lowerBoundSeconds: bound,
    makespanRatio: makespan / bound,
  };
}

async function main(): Promise<void> {
  if ((globalThis as { gc?: () => void }).gc === undefined)
    log("bench:scale: run with node --expose-gc for exact memory figures");
  const load = workload();
  const results: SizeResult[] = [];
  for (const size of SIZES) {
    const runs: SizeResult[] = [];
    for (let r = 0; r < REPEATS; r++) {
      log(`bench:scale: ${TASKS} tasks on ${size} workers (run ${r + 1})`);
      runs.push(await runSize(load, size));
    }
    runs.sort((a, b) => a.costPerTaskUs - b.costPerTaskUs);
    results.push(runs[Math.floor(runs.length / 2)] as SizeResult);
  }
  const first = results[0] as SizeResult;
  const last = results[results.length - 1] as SizeResult;
  const costRatio = ratio(last.costPerTaskUs, first.costPerTaskUs);
  const worstBytes = Math.max(...results.map((r) => r.bytesPerQueuedTask));
  const worstMakespan = Math.max(...results.map((r) => r.makespanRatio));
  const verdict = {
    costRatio,
    costMet: costRatio !== null && costRatio <= TARGET_COST_RATIO,
    bytesRatio: worstBytes / TARGET_BYTES_PER_TASK,
    bytesMet: worstBytes <= TARGET_BYTES_PER_TASK,
    makespanMet: worstMakespan <= TARGET_MAKESPAN,
  };
  if (wantsJson(process.argv)) {
    process.stdout.write(`${JSON.stringify({ results, verdict }, null, 2)}\n`);
    return;
  }
  const rows = results.map((r) => [
    String(r.workers),
    String(r.cores),
    `${r.costPerTaskUs.toFixed(1)} µs`,
    ratioText(ratio(r.costPerTaskUs, first.costPerTaskUs)),
    `${Math.round(r.bytesPerQueuedTask)} B`,
    ratioText(r.bytesPerQueuedTask / TARGET_BYTES_PER_TASK),
    `${r.makespanSeconds.toFixed(1)} s`,
    `${r.lowerBoundSeconds.toFixed(1)} s`,
    ratioText(r.makespanRatio, `≤ ${TARGET_MAKESPAN}`),
  ]);
  process.stdout.write(
    `${formatTable(
      [
        "workers",
        "cores",
        "cost/task",
        "vs 10 workers",
        "memory/queued task",
        "vs 2 KB",
        "makespan",
        "lower bound",
        "makespan / bound",
      ],
      rows,
    )}\n\n`,
  );
  process.stdout.write(
    [
      `cost per task at ${last.workers} workers / at ${first.workers}: ${ratioText(costRatio, `≤ ${TARGET_COST_RATIO}`)} — ${verdict.costMet ? "met" : "NOT met"}`,
      `memory per queued task, worst: ${Math.round(worstBytes)} B = ${ratioText(verdict.bytesRatio, "≤ 1.00 of 2 KB")} — ${verdict.bytesMet ? "met" : "NOT met"}`,
      `makespan / lower bound, worst: ${ratioText(worstMakespan, `≤ ${TARGET_MAKESPAN}`)} — ${verdict.makespanMet ? "met" : "NOT met"}`,
      `workload: seed ${SEED}, ${TASKS} tasks, shapes ${SHAPES.map((s) => `${s.weight}% ${JSON.stringify(s.spec)}`).join(", ")}; durations uniform ${MIN_SECONDS}–${MAX_SECONDS} s (simulated); workers of ${WORKER_CORES.join("/")} cores cycled, ${MEMORY_PER_CORE} MB memory and ${DISK_PER_CORE} MB disk per core.`,
      `cost/task: the median of ${REPEATS} runs of the real time from the first worker joining to the last result, per task (engine + scheduler + the simulated backend's heap); memory: heap growth with every task queued and no worker yet, per task (node --expose-gc); lower bound: max(longest task, Σ label·duration / pool total for cores, memory and disk).`,
    ].join("\n") + "\n",
  );
}

await main();
