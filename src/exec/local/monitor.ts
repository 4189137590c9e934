// Watches a running task: samples its process tree and sandbox while it runs, keeps the peaks,
// and calls `onExceeded` once when it goes over its memory or disk label.

import type { Resources } from "../../core/light.js";
import { diskUsage, sampleTree } from "./proc-tree.js";

/** First sample after this long: most short tasks finish before any sampling cost. */
const FIRST_SAMPLE_MS = 20;
const SAMPLE_EVERY_MS = 50;
/** The sandbox is walked every this many samples (a walk costs more than /proc reads). */
const DISK_EVERY = 5;

/** Peaks seen so far. */
export interface Peaks {
  rssMB: number;
  cpuMs: number;
  diskMB: number;
}

/** Samples `pid`'s tree and `sandbox` until stopped. */
export class Monitor {
  readonly peaks: Peaks = { rssMB: 0, cpuMs: 0, diskMB: 0 };
  readonly #pid: number;
  readonly #sandbox: string;
  readonly #label: Resources;
  readonly #onExceeded: (what: "memory" | "disk") => void;
  /** CPU the tree had used before this task; for a warm runtime, read at the first sample. */
  #cpuBase: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticks = 0;
  #stopped = false;
  #exceeded = false;

  constructor(options: {
    pid: number;
    sandbox: string;
    label: Resources;
    /**
     * The process ran before this task (a warm runtime): its CPU time so far is read at the first
     * sample rather than per task, since most tasks end before any sample. The tree's CPU in the
     * first {@link FIRST_SAMPLE_MS} is then not counted here; the runner reports its own exactly.
     */
    warm?: boolean;
    onExceeded: (what: "memory" | "disk") => void;
  }) {
    this.#pid = options.pid;
    this.#sandbox = options.sandbox;
    this.#label = options.label;
    this.#onExceeded = options.onExceeded;
    this.#cpuBase = options.warm === true ? undefined : 0;
    this.#timer = setTimeout(() => this.#tick(), FIRST_SAMPLE_MS);
  }

  /** Stops sampling and takes a last disk reading. */
  async stop(): Promise<Peaks> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#ticks > 0)
      this.peaks.diskMB = Math.max(
        this.peaks.diskMB,
        (await diskUsage(this.#sandbox)) / 1048576,
      );
    return this.peaks;
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#ticks++;
    const now = sampleTree(this.#pid);
    this.#cpuBase ??= now.cpuMs;
    this.peaks.rssMB = Math.max(this.peaks.rssMB, now.rssMB);
    this.peaks.cpuMs = Math.max(this.peaks.cpuMs, now.cpuMs - this.#cpuBase);
    if (now.rssMB > this.#label.memory) return this.#exceed("memory");
    const next = () => {
      if (!this.#stopped)
        this.#timer = setTimeout(() => this.#tick(), SAMPLE_EVERY_MS);
    };
    if (this.#ticks % DISK_EVERY !== 1) return next();
    diskUsage(this.#sandbox).then(
      (bytes) => {
        this.peaks.diskMB = Math.max(this.peaks.diskMB, bytes / 1048576);
        if (this.peaks.diskMB > this.#label.disk) this.#exceed("disk");
        else next();
      },
      // A walk racing the task's own deletes can fail; the next sample walks again.
      () => next(),
    );
  }

  #exceed(what: "memory" | "disk"): void {
    if (this.#exceeded || this.#stopped) return;
    this.#exceeded = true;
    this.#onExceeded(what);
  }
}
