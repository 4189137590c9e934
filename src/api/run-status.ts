// The live status of an executor's run: tasks waiting, running, done and failed, workers, and
// throughput, as one redrawn line on a terminal or a plain line now and then elsewhere.

import type { EnvpackEvent } from "../core/light.js";

/** Where status lines go (the executor's `progress: true` gives stderr). */
export interface StatusOutput {
  write(text: string): unknown;
}

/** Options of {@link RunStatus}. */
export interface RunStatusOptions {
  /** A terminal: one line redrawn in place (at most 10 times a second); else plain lines. */
  interactive: boolean;
  /** Plain mode: a line at most this often, when something changed (default 10 s). */
  intervalMs?: number | undefined;
  /** The clock (default Date.now). */
  now?: (() => number) | undefined;
}

/** Counts of a run as the status shows them. */
export interface StatusCounts {
  waiting: number;
  running: number;
  done: number;
  /** Tasks whose last attempt failed (an attempt retried is not counted). */
  failed: number;
  retried: number;
  workers: number;
}

/** How far back the throughput looks. */
const RATE_WINDOW_MS = 10_000;

/** Follows an executor's events and shows its state; `stop()` prints the last line. */
export class RunStatus {
  readonly #out: StatusOutput;
  readonly #interactive: boolean;
  readonly #interval: number;
  readonly #now: () => number;
  readonly #counts: StatusCounts = {
    waiting: 0,
    running: 0,
    done: 0,
    failed: 0,
    retried: 0,
    workers: 0,
  };
  /** (time, tasks ended) samples for the throughput. */
  readonly #samples: [number, number][] = [];
  readonly #timer: NodeJS.Timeout;
  #lastDraw = 0;
  #lastLine = "";
  #stopped = false;

  constructor(out: StatusOutput, options: RunStatusOptions) {
    this.#out = out;
    this.#interactive = options.interactive;
    this.#interval = options.intervalMs ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#samples.push([this.#now(), 0]);
    this.#timer = setInterval(
      () => this.#draw(true),
      this.#interactive ? 1000 : this.#interval,
    );
    this.#timer.unref();
  }

  /** The counts now. */
  counts(): StatusCounts {
    return { ...this.#counts };
  }

  /** Takes one event into the counts (and redraws a terminal's line, at most 10 times a second). */
  onEvent(event: EnvpackEvent): void {
    const c = this.#counts;
    if (event.type === "worker:joined") c.workers++;
    else if (event.type === "worker:left") c.workers--;
    else if (event.type !== "task:state") return;
    else if (event.state === "queued") c.waiting++;
    else if (event.state === "running") {
      c.waiting--;
      c.running++;
    } else if (event.state === "done") {
      c.running--;
      c.done++;
    } else if (event.state === "failed") {
      c.running--;
      c.failed++;
    } else {
      // A retry follows its attempt's failure at once: that attempt was not the task's last.
      c.failed--;
      c.retried++;
      c.waiting++;
    }
    if (this.#interactive) this.#draw(false);
  }

  /** Stops the timer and prints the final state on a line of its own. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    const line = this.line();
    this.#out.write(this.#interactive ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  /** Stops the timer and prints nothing (the run never started). */
  dispose(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /** The status line (no escape codes). */
  line(): string {
    const c = this.#counts;
    const now = this.#now();
    const ended = c.done + c.failed;
    const samples = this.#samples;
    while (
      samples.length > 1 &&
      now - (samples[1] as [number, number])[0] >= RATE_WINDOW_MS
    )
      samples.shift();
    const [since, before] = samples[0] as [number, number];
    const seconds = (now - since) / 1000;
    const rate = seconds > 0 ? (ended - before) / seconds : 0;
    if (now - (samples[samples.length - 1] as [number, number])[0] >= 1000)
      samples.push([now, ended]);
    return (
      `tasks: ${c.waiting} waiting, ${c.running} running, ${c.done} done, ${c.failed} failed` +
      (c.retried > 0 ? ` (${c.retried} retried)` : "") +
      ` · workers: ${c.workers} · ${rate.toFixed(rate >= 10 ? 0 : 1)} tasks/s`
    );
  }

  #draw(timed: boolean): void {
    if (this.#stopped) return;
    const now = this.#now();
    if (this.#interactive) {
      if (!timed && now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      this.#out.write(`\r\x1b[2K${this.line()}`);
      return;
    }
    const line = this.line();
    // Plain mode: only when something moved since the last line.
    if (line.replace(/ · [\d.]+ tasks\/s$/, "") === this.#lastLine) return;
    this.#lastLine = line.replace(/ · [\d.]+ tasks\/s$/, "");
    this.#out.write(`${line}\n`);
  }
}
