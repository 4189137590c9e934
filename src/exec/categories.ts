// autolabel and autocategory as Work Queue does them: each category runs its first tasks on a
// whole worker to measure them, then labels its tasks from the measured peaks; a task over its
// label is retried on a whole worker.

import type {
  CategorySummary,
  ResourceSpec,
  Resources,
  TaskUsage,
} from "../core/index.js";

export type { CategorySummary };

/** How a category's label is chosen from its samples. */
export type AutolabelMode = "max" | "throughput";

/** Headroom over the measured peak: run-to-run variation should not kill a task. */
const HEADROOM = 1.1;

interface Category {
  samples: TaskUsage[];
  label: ResourceSpec | null;
  reason: string;
  overLabel: number;
}

/** The categories of one executor. */
export class Categories {
  readonly #window: number;
  readonly #mode: AutolabelMode;
  readonly #all = new Map<string, Category>();

  constructor(options: { window: number; mode: AutolabelMode }) {
    this.#window = options.window;
    this.#mode = options.mode;
  }

  /** The label to run a category's next task with: null = a whole worker (still measuring). */
  labelFor(category: string): ResourceSpec | null {
    return this.#get(category).label;
  }

  /**
   * Records a finished task's usage. Returns the category's new summary when its label changed,
   * so the caller can report it. `worker` is the largest worker (for throughput mode).
   */
  record(
    category: string,
    usage: TaskUsage,
    worker: Resources,
    overLabel: boolean,
  ): CategorySummary | undefined {
    const state = this.#get(category);
    if (overLabel) state.overLabel++;
    state.samples.push(usage);
    if (state.samples.length < this.#window) return undefined;
    const before = JSON.stringify(state.label);
    const { label, reason } = this.#choose(state.samples, worker);
    state.label = label;
    state.reason = reason;
    return JSON.stringify(label) === before
      ? undefined
      : this.#summary(category, state);
  }

  summary(): CategorySummary[] {
    return [...this.#all].map(([name, state]) => this.#summary(name, state));
  }

  #get(category: string): Category {
    let state = this.#all.get(category);
    if (state === undefined) {
      state = {
        samples: [],
        label: null,
        reason: `measuring: the first ${this.#window} tasks run on a whole worker`,
        overLabel: 0,
      };
      this.#all.set(category, state);
    }
    return state;
  }

  #choose(
    samples: TaskUsage[],
    worker: Resources,
  ): { label: ResourceSpec; reason: string } {
    const peaks = {
      memory: samples.map((s) => s.peakMemory),
      cores: samples.map((s) => s.cores),
      disk: samples.map((s) => s.disk),
    };
    // A resource no sample saw (a task too short to sample, one that writes nothing) gets no
    // key: it then takes the worker share of the cores (the proportional rule), never a 1 MB cap.
    const measured = (values: number[], pick: (v: number[]) => number) =>
      Math.max(...values) > 0 ? pick(values) : undefined;
    const label: ResourceSpec =
      this.#mode === "max"
        ? {
            cores: Math.max(1, Math.ceil(Math.max(...peaks.cores) - 0.05)),
            memory: measured(peaks.memory, (v) =>
              Math.ceil(Math.max(...v) * HEADROOM),
            ),
            disk: measured(peaks.disk, (v) =>
              Math.ceil(Math.max(...v) * HEADROOM),
            ),
          }
        : {
            cores: bestForThroughput(
              peaks.cores.map((c) => Math.max(1, Math.ceil(c - 0.05))),
              worker.cores,
              1,
            ),
            memory: measured(peaks.memory, (v) =>
              bestForThroughput(v, worker.memory, HEADROOM),
            ),
            disk: measured(peaks.disk, (v) =>
              bestForThroughput(v, worker.disk, HEADROOM),
            ),
          };
    for (const key of ["memory", "disk"] as const)
      if (label[key] === undefined) delete label[key];
    return {
      label,
      reason:
        this.#mode === "max"
          ? `max-seen over ${samples.length} tasks (+10% headroom for memory and disk)`
          : `max-throughput over ${samples.length} tasks: the label that fits the most tasks that succeed per worker`,
    };
  }

  #summary(category: string, state: Category): CategorySummary {
    const max = (f: (u: TaskUsage) => number) =>
      state.samples.length === 0 ? 0 : Math.max(...state.samples.map(f));
    return {
      category,
      samples: state.samples.length,
      label: state.label,
      reason: state.reason,
      peaks: {
        memory: max((u) => u.peakMemory),
        cores: max((u) => u.cores),
        disk: max((u) => u.disk),
      },
      overLabel: state.overLabel,
    };
  }
}

/**
 * Work Queue's max-throughput choice for one resource: among the measured peaks (with headroom)
 * as candidate labels, the one maximising (share of tasks that fit it) × (tasks per worker at it);
 * a task over it is retried on a whole worker. Ties go to the larger label.
 */
function bestForThroughput(
  peaks: number[],
  workerAmount: number,
  headroom: number,
): number {
  const candidates = [
    ...new Set(peaks.map((p) => Math.max(1, Math.ceil(p * headroom)))),
  ].sort((a, b) => a - b);
  let best = candidates[candidates.length - 1] as number;
  let bestScore = -1;
  for (const candidate of candidates) {
    const succeed =
      peaks.filter((p) => p * headroom <= candidate).length / peaks.length;
    const perWorker = Math.max(1, Math.floor(workerAmount / candidate));
    const score = succeed * perWorker;
    if (score >= bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}
