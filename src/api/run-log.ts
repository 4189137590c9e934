// The run log: every event of an executor appended to a file as one JSON line, readable after the
// submitting process is killed (what `envpack report` reads).

import { closeSync, fdatasyncSync, openSync, writeSync } from "node:fs";
import { writeFailure, type EnvpackEvent } from "../core/light.js";

/** Version of the run log's records; bumped when a record changes shape. */
export const RUN_LOG_VERSION = 1;

/** What the first line of a run log says about the run. */
export interface RunStart {
  backend: string;
  envpack: string;
  pid: number;
  options: Record<string, unknown>;
}

/** How long written lines may wait for an fdatasync (a machine crash; a process crash loses none). */
const SYNC_EVERY_MS = 1000;

/**
 * Appends events to a file, one JSON object a line with its time `t` (ms since the epoch). Each
 * line is one `write(2)` on a descriptor opened with O_APPEND, from this thread, before the event
 * goes on: nothing waits in a user-space buffer, so a killed submitter loses no line it wrote
 * (the kernel holds it) and a line is never interleaved with another. Written lines are also
 * flushed to the disk (fdatasync) at most a second later and at close, for a crash of the machine.
 * A task's returned value is not logged (it may be large); its error is.
 */
export class RunLog {
  readonly path: string;
  /** Why writing stopped (a full disk), once it did. */
  failure: unknown;
  #fd: number | undefined;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;

  /**
   * Opens (appends to) `path` and writes the run's first line.
   * @throws InputError ENVPACK_INPUT_OUTPUT_UNWRITABLE / ENVPACK_INPUT_NO_SPACE
   */
  constructor(path: string, start: RunStart) {
    this.path = path;
    try {
      this.#fd = openSync(path, "a", 0o644);
    } catch (error) {
      throw writeFailure(error, path, "run log");
    }
    this.#append({ type: "run:start", version: RUN_LOG_VERSION, ...start });
    if (this.failure !== undefined) throw this.failure;
    this.#sync();
  }

  /** Appends one event. */
  write(event: EnvpackEvent): void {
    if (event.type === "task:state" && event.result?.value !== undefined) {
      const { value: _value, ...result } = event.result;
      this.#append({ ...event, result });
    } else this.#append({ ...event });
  }

  /** Writes the run's last line (its task counts) and closes the file. */
  close(end: Record<string, unknown>): void {
    if (this.#fd === undefined) return;
    this.#append({ type: "run:end", ...end });
    clearTimeout(this.#timer);
    this.#sync();
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  #append(record: Record<string, unknown>): void {
    if (this.#fd === undefined) return;
    const line = Buffer.from(
      `${JSON.stringify({ t: Date.now(), ...record })}\n`,
    );
    try {
      for (let at = 0; at < line.length;)
        at += writeSync(this.#fd, line, at, line.length - at);
    } catch (error) {
      // Events must not throw into the engine: logging stops, and shutdown reports why.
      this.failure = writeFailure(error, this.path, "run log");
      clearTimeout(this.#timer);
      closeSync(this.#fd);
      this.#fd = undefined;
      return;
    }
    if (!this.#dirty) {
      this.#dirty = true;
      this.#timer = setTimeout(() => this.#sync(), SYNC_EVERY_MS);
      this.#timer.unref();
    }
  }

  #sync(): void {
    this.#dirty = false;
    if (this.#fd !== undefined) fdatasyncSync(this.#fd);
  }
}
