// autolabel and autocategory as Work Queue does them: each category runs its first tasks on a
// whole worker to measure them, then labels its tasks from the measured peaks; a task over its
// label is retried on a whole worker.

import type {
  CategorySummary,
  ResourceSpec,
  Resources,
  TaskUsage,
} from "../core/light.js";

export type { CategorySummary };

/** How a category's label is chosen from its samples. */
export type AutolabelMode = "max" | "throughput";

/** Headroom over the measured peak: run-to-run variation should not kill a task. */
const HEADROOM = 1.1;

/**
 * In throughput mode, the label is chosen again after this many more samples (Work Queue's
 * first_allocation_every_n_tasks); max mode follows every new peak at once.
 */
export const RELABEL_EVERY = 25;

/** The measured peaks of one resource: the largest, and how many tasks needed each whole label. */
interface Peaks {
  max: number;
  /** Candidate label (peak with headroom, rounded up, ≥ 1) → tasks that fit no smaller one. */
  counts: Map<number, number>;
}

interface Category {
  samples: number;
  memory: Peaks;
  cores: Peaks;
  disk: Peaks;
  label: ResourceSpec | null;
  reason: string;
  overLabel: number;
}

const peaks = (): Peaks => ({ max: 0, counts: new Map() });

function add(into: Peaks, value: number, candidate: number): void {
  into.max = Math.max(into.max, value);
  into.counts.set(candidate, (into.counts.get(candidate) ?? 0) + 1);
}

/** A peak with headroom in whole MB (110.00000000000001 is 110, not 111). */
const withHeadroom = (value: number) => Math.ceil(value * HEADROOM - 1e-9);

/** The cores a measured CPU share needs: whole cores, a little noise forgiven. */
const wholeCores = (cores: number) => Math.max(1, Math.ceil(cores - 0.05));

/** The categories of one executor. Memory per category is bounded by distinct labels, not tasks. */
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
   * so the caller can report it. `worker`: each resource's largest amount on any worker (labels
   * never ask for more; throughput mode counts tasks per worker at it).
   */
  record(
    category: string,
    usage: TaskUsage,
    worker: Resources,
    overLabel: boolean,
  ): CategorySummary | undefined {
    const state = this.#get(category);
    if (overLabel) state.overLabel++;
    state.samples++;
    add(
      state.memory,
      usage.peakMemory,
      Math.max(1, withHeadroom(usage.peakMemory)),
    );
    add(state.disk, usage.disk, Math.max(1, withHeadroom(usage.disk)));
    add(state.cores, usage.cores, wholeCores(usage.cores));
    const since = state.samples - this.#window;
    if (since < 0) return undefined;
    if (this.#mode === "throughput" && since % RELABEL_EVERY !== 0)
      return undefined;
    const before = JSON.stringify(state.label);
    const { label, reason } = this.#choose(state, worker);
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
        samples: 0,
        memory: peaks(),
        cores: peaks(),
        disk: peaks(),
        label: null,
        reason: `measuring: the first ${this.#window} tasks run on a whole worker`,
        overLabel: 0,
      };
      this.#all.set(category, state);
    }
    return state;
  }

  #choose(
    state: Category,
    worker: Resources,
  ): { label: ResourceSpec; reason: string } {
    const max = this.#mode === "max";
    // A resource no sample saw (a task too short to sample, one that writes nothing) gets no
    // key: it then takes the worker share of the cores (the proportional rule), never a 1 MB cap.
    // Headroom never asks for more than a worker has: a task that needed a whole worker gets one.
    const pick = (of: Peaks, workerAmount: number) =>
      of.max <= 0
        ? undefined
        : Math.min(
            workerAmount,
            max
              ? withHeadroom(of.max)
              : bestForThroughput(of.counts, state.samples, workerAmount),
          );
    const label: ResourceSpec = {
      cores: Math.min(
        Math.max(1, worker.cores),
        max
          ? wholeCores(state.cores.max)
          : bestForThroughput(state.cores.counts, state.samples, worker.cores),
      ),
    };
    const memory = pick(state.memory, worker.memory);
    const disk = pick(state.disk, worker.disk);
    if (memory !== undefined) label.memory = memory;
    if (disk !== undefined) label.disk = disk;
    return {
      label,
      reason: max
        ? `max-seen over ${state.samples} tasks (+10% headroom for memory and disk)`
        : `max-throughput over ${state.samples} tasks: the label that fits the most tasks that succeed per worker`,
    };
  }

  #summary(category: string, state: Category): CategorySummary {
    return {
      category,
      samples: state.samples,
      label: state.label,
      reason: state.reason,
      peaks: {
        memory: state.memory.max,
        cores: state.cores.max,
        disk: state.disk.max,
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
  counts: Map<number, number>,
  samples: number,
  workerAmount: number,
): number {
  const candidates = [...counts.keys()].sort((a, b) => a - b);
  let best = candidates[candidates.length - 1] ?? 1;
  let bestScore = -1;
  let fitting = 0;
  for (const candidate of candidates) {
    fitting += counts.get(candidate) ?? 0;
    const perWorker = Math.max(1, Math.floor(workerAmount / candidate));
    const score = (fitting / samples) * perWorker;
    if (score >= bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}
