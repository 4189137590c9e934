// An idle timer for one HTTP exchange: aborts when no byte has moved for a while, so a registry
// that accepts a connection and then goes silent fails the transfer instead of hanging it.

import { Transform } from "node:stream";
import type { Deadline } from "./deadline.js";

/** Aborts {@link Watchdog.signal} after `idleMs` without a {@link Watchdog.touch}. */
export class Watchdog {
  readonly idleMs: number;
  readonly #deadline: Deadline | undefined;
  #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;

  /** `deadline`, when given, is told of every byte that moves (see {@link Watchdog.touch}). */
  constructor(idleMs: number, deadline?: Deadline) {
    this.idleMs = idleMs;
    this.#deadline = deadline;
  }

  /** The current attempt's signal; a new one after {@link Watchdog.arm} once this one fired. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True when the current signal was aborted by the timer. */
  get fired(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Why it fired, for messages. */
  get reason(): Error {
    return new Error(`no data for ${this.idleMs / 1000} s`);
  }

  /** Starts (or restarts, after it fired) the timer for a new attempt. */
  arm(): void {
    if (this.fired) this.#controller = new AbortController();
    this.#restart();
  }

  /** Bytes moved: the idle time starts again, and so does the operation's deadline. */
  touch(): void {
    this.#deadline?.progressed();
    this.#restart();
  }

  #restart(): void {
    clearTimeout(this.#timer);
    const controller = this.#controller;
    this.#timer = setTimeout(() => controller.abort(this.reason), this.idleMs);
    // A forgotten watchdog (a body nobody read) must not keep the process alive.
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  /** A pass-through that touches the watchdog for every chunk (an upload body). */
  through(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.touch();
        callback(null, chunk);
      },
    });
  }
}
