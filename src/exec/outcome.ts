// How a task's run ended, as every backend decodes it: a process's exit or signal, a runtime's
// reply, a kill over the label, a cancel, a lost worker — into the one TaskResult shape. Each
// backend finds the facts its own way (a child process, a worker's report); the meaning is here.

import { constants } from "node:os";
import {
  TASK_PROTOCOL,
  sanitizeText,
  type TaskReply,
  type TaskResult,
  type TaskSpec,
  type TaskUsage,
} from "../core/light.js";
import type { Placement } from "./backend.js";

/** A run's outcome before the backend adds who ran it and how long it took. */
export type Outcome = Omit<
  TaskResult,
  "protocol" | "id" | "workerId" | "label" | "attempt" | "durationMs"
>;

/** Usage of a run that measured nothing (it did not start, or was lost). */
export function noUsage(wallMs = 0): TaskUsage {
  return { peakMemory: 0, cpuMs: 0, disk: 0, wallMs, cores: 0 };
}

/** The TaskResult of a task's run on its placement. */
export function taskResult(
  task: TaskSpec,
  placement: Placement,
  outcome: Outcome,
  durationMs: number,
): TaskResult {
  return {
    protocol: TASK_PROTOCOL,
    id: task.id,
    workerId: placement.workerId,
    label: placement.label,
    attempt: task.attempt,
    ...outcome,
    durationMs,
  };
}

/** The last part of a task's stderr, safe to show (no control characters or escapes). */
export function stderrTail(text: string): string {
  return sanitizeText(text, { multiline: true, maxChars: 2000 });
}

/** A task canceled (by its signal or a shutdown), possibly before it started. */
export function canceledOutcome(usage: TaskUsage = noUsage()): Outcome {
  return {
    ok: false,
    reason: "canceled",
    error: { name: "Canceled", message: "the task was canceled" },
    usage,
  };
}

/** A task whose worker left under it: it runs again elsewhere (not a failed attempt). */
export function lostOutcome(
  message = "the worker running the task left",
  usage: TaskUsage = noUsage(),
): Outcome {
  return {
    ok: false,
    reason: "worker-lost",
    error: { name: "WorkerLost", message },
    usage,
  };
}

/** A task killed for going over its label. */
export function overResourcesOutcome(
  exceeded: "memory" | "disk" | undefined,
  usage: TaskUsage,
  what: string = exceeded ?? "resource",
): Outcome {
  return {
    ok: false,
    reason: "over-resources",
    exceeded,
    error: {
      name: "OverResources",
      message: `the task went over its ${what} label and was killed`,
    },
    usage,
  };
}

/** What a backend knows of a process that ran a task and ended by itself. */
export interface ProcessEnd {
  kind: TaskSpec["payload"]["kind"];
  /** Its exit code; undefined when a signal ended it. */
  exitCode: number | undefined;
  /** The signal's name (SIGKILL) when one ended it. */
  signal: string | undefined;
  usage: TaskUsage;
  /** Commands: all it wrote to stdout. */
  stdout?: string | undefined;
  /** Module and Python apps: the runner's answer, when it gave one. */
  reply?: TaskReply | undefined;
  /** What ran, for messages (a command's program; apps: their runtime). */
  program?: string | undefined;
  stderrTail?: string | undefined;
}

/**
 * A process's end, decoded: a command is ok on exit 0 and otherwise fails with its exit code or
 * signal (stdout kept either way, `exitCode` 128+N for a signal in its value); an app is what its
 * runner answered, or, without an answer, a runtime that exited or was killed during the task.
 */
export function processOutcome(end: ProcessEnd): Outcome {
  const tail =
    end.stderrTail === undefined || end.stderrTail === ""
      ? {}
      : { stderrTail: end.stderrTail };
  const how =
    end.signal !== undefined
      ? `was killed by ${end.signal}`
      : `exited with code ${end.exitCode}`;
  if (end.kind === "command") {
    const stdout = end.stdout ?? "";
    if (end.signal === undefined && end.exitCode === 0)
      return {
        ok: true,
        reason: "ok",
        value: { exitCode: 0, stdout },
        usage: end.usage,
      };
    return {
      ok: false,
      reason: end.signal !== undefined ? "signal" : "exit",
      exitCode: end.exitCode,
      signal: end.signal,
      value: {
        exitCode: end.exitCode ?? 128 + signalNumber(end.signal),
        stdout,
      },
      error: {
        name: "ExitError",
        message: `${end.program ?? "the command"} ${how}`,
      },
      ...tail,
      usage: end.usage,
    };
  }
  if (end.reply !== undefined)
    return end.reply.ok
      ? {
          ok: true,
          reason: "ok",
          value: end.reply.value ?? null,
          usage: end.usage,
        }
      : {
          ok: false,
          reason: "exit",
          error: end.reply.error,
          ...tail,
          usage: end.usage,
        };
  return {
    ok: false,
    reason: end.signal !== undefined ? "signal" : "exit",
    exitCode: end.exitCode,
    signal: end.signal,
    error: {
      name: "RuntimeExit",
      message: `${end.program ?? `the ${end.kind === "module" ? "node" : "python"} runtime`} ${how} during the task`,
    },
    ...tail,
    usage: end.usage,
  };
}

/** A signal's number by name (0 when unknown). */
export function signalNumber(name: string | undefined): number {
  return name === undefined ? 0 : (SIGNALS[name] ?? 0);
}

/** A signal's name by number (`signal N` when unknown). */
export function signalName(n: number): string {
  for (const [name, value] of Object.entries(SIGNALS))
    if (value === n) return name;
  return `signal ${n}`;
}

const SIGNALS = constants.signals as Record<string, number>;
