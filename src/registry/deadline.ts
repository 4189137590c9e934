// How long one registry operation may go without progress, across all its attempts: a registry
// that accepts connections and never answers fails the operation instead of stalling it.

/** A time budget that starts again whenever bytes move; attempts and backoffs spend it. */
export class Deadline {
  readonly ms: number;
  #since = performance.now();

  constructor(ms: number) {
    this.ms = ms;
  }

  /** Bytes moved: the budget starts again. */
  progressed(): void {
    this.#since = performance.now();
  }

  /** Milliseconds left; 0 or less once spent. */
  get remainingMs(): number {
    return this.#since + this.ms - performance.now();
  }

  get expired(): boolean {
    return this.remainingMs <= 0;
  }

  /**
   * A signal that aborts once the budget is spent (waiting out any progress made meanwhile), for
   * one attempt's wait for an answer; `stop` once the answer came.
   */
  guard(): { signal: AbortSignal; stop(): void } {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      const left = this.remainingMs;
      if (left <= 0) {
        controller.abort(new Error(`no progress for ${this.ms / 1000} s`));
        return;
      }
      timer = setTimeout(check, left);
      // The request's socket keeps the process alive while it matters.
      timer.unref();
    };
    check();
    return { signal: controller.signal, stop: () => clearTimeout(timer) };
  }
}
