// How the CLI talks to a person or a script: stdout for results, stderr for progress and errors.

import { writeSync } from "node:fs";
import type { EnvpackEvent } from "../../core/light.js";
import { isEnvpackError } from "../../core/light.js";

/** What ends the process when stdout's reader is gone (set by main.ts). */
let stdoutClosed: () => void = () => {};

/** Sets what {@link writeStdout} does once stdout's reader has gone away (EPIPE). */
export function whenStdoutClosed(handler: () => void): void {
  stdoutClosed = handler;
}

/** Set once a write went through process.stdout: what follows queues behind it, in order. */
let throughStream = false;

/**
 * Writes `text` to stdout with write(2): making process.stdout (on a pipe, a socket stream and
 * the stream modules) cost more than printing a result. On EPIPE the handler given to
 * {@link whenStdoutClosed} runs. A non-blocking stdout that is full (EAGAIN) hands the rest, and
 * every later write, to process.stdout, which waits for room and reports EPIPE the same way.
 */
export function writeStdout(text: string): void {
  const bytes = Buffer.from(text);
  if (throughStream) {
    process.stdout.write(bytes);
    return;
  }
  let at = 0;
  try {
    while (at < bytes.length) at += writeSync(1, bytes, at, bytes.length - at);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EPIPE") return stdoutClosed();
    if (code !== "EAGAIN") throw error;
    throughStream = true;
    process.stdout.on("error", (streamError: NodeJS.ErrnoException) => {
      if (streamError.code !== "EPIPE") throw streamError;
      stdoutClosed();
    });
    process.stdout.write(bytes.subarray(at));
  }
}

/** Output settings fixed by the global flags and the environment. */
export interface OutputMode {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /** stderr is a TTY and CI is not set: one redrawn status line; otherwise plain lines. */
  interactive: boolean;
  color: boolean;
}

/** Decides the output mode from flags and the process's streams and environment. */
export function outputMode(flags: {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}): OutputMode {
  // CI first: reading process.stderr makes its stream (a few ms on a pipe) for nothing then.
  const interactive = !process.env.CI && Boolean(process.stderr.isTTY);
  return {
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
    verbose: Boolean(flags.verbose),
    interactive,
    color: interactive && !process.env.NO_COLOR,
  };
}

/** Renders progress events on stderr: a status line at most 10 times a second on a TTY, milestones otherwise. */
export function progressRenderer(mode: OutputMode): {
  onEvent: (event: EnvpackEvent) => void;
  done: () => void;
} {
  let last = 0;
  let drawn = false;
  // The first sample of each transfer: events come every few MB, so it may be well past byte 0.
  const started: Partial<
    Record<"pack" | "unpack" | "push" | "pull", { at: number; bytes: number }>
  > = {};
  const clear = () => {
    if (drawn) process.stderr.write("\r\x1b[2K");
    drawn = false;
  };
  const onEvent = (event: EnvpackEvent) => {
    if (event.type === "warn") {
      if (mode.quiet) return;
      clear();
      process.stderr.write(`warning: ${event.message} [${event.code}]\n`);
      return;
    }
    if (event.type === "debug") {
      if (!mode.verbose) return;
      clear();
      process.stderr.write(
        `[${new Date().toISOString().slice(11, 23)}] ${event.message}\n`,
      );
      return;
    }
    if (mode.quiet) return;
    if (event.type === "scan:file" && mode.interactive) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      process.stderr.write(`\r\x1b[2Kscanning: ${event.count} files`);
      drawn = true;
    } else if (event.type === "scan:done") {
      clear();
      process.stderr.write(
        `scan: ${event.files} files parsed, ${event.packages} packages, ${event.unresolved} unresolved (${(event.durationMs / 1000).toFixed(2)} s)\n`,
      );
    } else if (event.type === "build:progress") {
      transfer(
        event.phase,
        event.bytes,
        event.total,
        event.phase === "pack" ? "packing" : "unpacking",
        `${event.files} files`,
        `${event.files} entries`,
      );
    } else if (event.type === "registry:transfer") {
      transfer(
        event.direction,
        event.bytes,
        event.total,
        event.direction === "push" ? "pushing" : "pulling",
        event.digest.slice(0, 19) + "…",
        event.digest.slice(0, 19) + "…",
      );
    }
  };
  /** A live line while bytes move (TTY only), one summary line when they are all through. */
  const transfer = (
    key: keyof typeof started,
    bytes: number,
    total: number,
    verb: string,
    what: string,
    summary: string,
  ) => {
    const now = Date.now();
    const first = (started[key] ??= { at: now, bytes });
    // Rates and durations from what moved since the first sample; none from a single sample.
    const moved = bytes - first.bytes;
    const elapsed = (now - first.at) / 1000;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    // A total of 0 is unknown (a registry that sent no Content-Length): no end to detect.
    const finished = total > 0 && bytes >= total;
    if (mode.interactive && !finished) {
      if (now - last < 100) return;
      last = now;
      const rate =
        moved > 0 && elapsed > 0 ? `, ${mb(moved / elapsed)} MB/s` : "";
      process.stderr.write(
        `\r\x1b[2K${verb}: ${mb(bytes)}${total > 0 ? `/${mb(total)}` : ""} MB, ${what}${rate}`,
      );
      drawn = true;
    } else if (finished) {
      clear();
      delete started[key];
      const seconds =
        moved > 0 && elapsed > 0
          ? ` (${(elapsed * (total / moved)).toFixed(2)} s)`
          : "";
      process.stderr.write(`${key}: ${summary}, ${mb(total)} MB${seconds}\n`);
    }
  };
  return { onEvent, done: clear };
}

/** Prints a command's result: one JSON document under --json, human text otherwise. */
export function printResult(
  mode: OutputMode,
  json: Record<string, unknown>,
  human: string,
): void {
  if (mode.json)
    writeStdout(JSON.stringify({ ok: true, ...json }, null, 2) + "\n");
  else if (human) writeStdout(human.endsWith("\n") ? human : human + "\n");
}

/** Prints a failure and returns the exit code: coded errors without a stack, bugs with one. */
export function printError(mode: OutputMode, error: unknown): number {
  if (isEnvpackError(error)) {
    if (mode.json) {
      writeStdout(
        JSON.stringify({ ok: false, error: error.toJSON() }, null, 2) + "\n",
      );
    } else {
      const lines = [`envpack: ${error.message}`];
      if (error.hint) lines.push(`hint: ${error.hint}`);
      lines.push(`code: ${error.code}`);
      process.stderr.write(lines.join("\n") + "\n");
    }
    return error.exitCode;
  }
  const text =
    error instanceof Error ? (error.stack ?? error.message) : String(error);
  if (mode.json) {
    writeStdout(
      JSON.stringify({
        ok: false,
        error: {
          code: "ENVPACK_INTERNAL",
          message: String(error instanceof Error ? error.message : error),
        },
      }) + "\n",
    );
  }
  process.stderr.write(
    `envpack: internal error — please report it with the output below.\n${text}\n`,
  );
  return 70;
}
