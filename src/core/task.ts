// A task as the scheduler and every backend see it, and its result: one shape for success and
// failure (STYLE §8). The runtime wrappers in runtime/ speak the messages defined here.

import type { Digest } from "./digest.js";
import type { ResourceSpec, Resources } from "./resources.js";

/** Version of the task messages exchanged with runtime wrappers; bumped on any change. */
export const TASK_PROTOCOL = 1;

/** What a task runs. */
export type TaskPayload =
  /**
   * A module app: `exportName` of the ES module at `module` (an absolute path; under a bundle,
   * relative to the unpacked bundle, or empty for the bundle's first entry), called with `args`.
   */
  | { kind: "module"; module: string; exportName: string; args: unknown[] }
  /** A command app: argv run without a shell, or one shell command line run by `/bin/sh -c`. */
  | { kind: "command"; argv: string[] }
  | { kind: "command"; shell: string }
  /** A Python app: `functionName` of the `.py` file at `file` (as `module` above), called with `args`. */
  | { kind: "python"; file: string; functionName: string; args: unknown[] };

/** A bundle a task runs inside: each worker unpacks it once. */
export interface TaskBundle {
  digest: Digest;
  /** The bundle file on the submitting host. */
  path: string;
  kind: "node" | "conda";
}

/** One task, as submitted to the scheduler and handed to a backend. */
export interface TaskSpec {
  /** Unique within an executor. */
  id: string;
  /** The autolabel category: the app's name under autocategory, else "default". */
  category: string;
  payload: TaskPayload;
  /** Declared resources; undefined keys are unknown. */
  resources: ResourceSpec;
  /** Present under `pack: true`: the payload's paths are relative to the unpacked bundle. */
  bundle?: TaskBundle | undefined;
  /** Extra environment variables. */
  env?: Record<string, string> | undefined;
  /** 0 for the first run, +1 for every retry. */
  attempt: number;
}

/** What a task used, measured over its whole process tree. */
export interface TaskUsage {
  /** Peak resident memory in MB. */
  peakMemory: number;
  /** CPU time / wall time. */
  cores: number;
  /** MB written in the task's sandbox (its high-water mark). */
  disk: number;
  wallMs: number;
  cpuMs: number;
}

/** Why a task ended; the first cause wins. */
export type TaskEndReason =
  | "ok"
  /** A command exited non-zero, or an app threw (then `error` is set). */
  | "exit"
  | "signal"
  | "timeout"
  | "canceled"
  | "over-resources"
  | "worker-lost";

/** The result of one task run (one attempt). */
export interface TaskResult {
  protocol: typeof TASK_PROTOCOL;
  id: string;
  ok: boolean;
  reason: TaskEndReason;
  /**
   * The app's return value (JSON); for a command, `{ exitCode, stdout }` (stdout captured whole,
   * also when it exited non-zero).
   */
  value?: unknown;
  /** The error an app threw, with the remote stack. */
  error?:
    { name: string; message: string; stack?: string | undefined } | undefined;
  exitCode?: number | undefined;
  signal?: string | undefined;
  /** For over-resources: which label was exceeded. */
  exceeded?: "memory" | "disk" | undefined;
  /** Last lines of stderr (control characters stripped). */
  stderrTail?: string | undefined;
  durationMs: number;
  usage: TaskUsage;
  workerId: string;
  /** The resources the task ran with. */
  label: Resources;
  attempt: number;
}

/** What a runtime wrapper sends once it is ready for tasks (runtime/module-runner.mjs). */
export interface RuntimeReady {
  type: "ready";
  protocol: typeof TASK_PROTOCOL;
}

/**
 * One task for a runtime wrapper: runtime/module-runner.mjs receives module requests over its IPC
 * channel (one after another, warm); runtime/python-runner.py reads one Python request on stdin
 * (or, both, many over a remote warm runtime's connection: RuntimeWire).
 * Paths are absolute; `cwd` is the task's sandbox.
 */
export type TaskRequest =
  | {
      type: "run";
      protocol: typeof TASK_PROTOCOL;
      id: string;
      /** A path or a file: URL. */
      module: string;
      exportName: string;
      args: unknown[];
      cwd: string;
    }
  | {
      type: "run";
      protocol: typeof TASK_PROTOCOL;
      id: string;
      file: string;
      function: string;
      args: unknown[];
      cwd: string;
    };

/**
 * A runtime wrapper's answer for one task: over IPC from the module runner, on file descriptor 3
 * from a one-shot runner (so the app's own stdout is never mistaken for it), over its connection
 * from a remote warm runtime.
 */
export interface TaskReply {
  type: "result";
  protocol: typeof TASK_PROTOCOL;
  id: string;
  ok: boolean;
  /** The function's return value (JSON; `undefined`/`None` become null). */
  value?: unknown;
  /** What it threw: the error's name, message and stack. */
  error?: { name: string; message: string; stack?: string | undefined };
  /** Module runner, warm Python runner: CPU ms the runtime used for the task (all its threads). */
  cpuMs?: number;
  /** Module runner, warm Python runner: the runtime's resident MB after the task. */
  rssMB?: number;
  /** Warm runners: resident MB once the task's garbage is collected (the next task's start). */
  restMB?: number;
  /** Warm runners: MB the task left in its sandbox (measured, then emptied). */
  diskMB?: number;
  /**
   * Remote warm runtime: the runtime's peak resident MB during this task alone (its high-water
   * mark is reset when the task starts, with the runtime at rest).
   */
  peakMB?: number;
}

/**
 * What a remote warm runtime (runtime/module-runner.mjs or python-runner.py `--connect`, a
 * long-lived Work Queue task) reads on stdin: where the manager listens, and the one-time token
 * that proves, over a challenge, that the runtime was started by the manager's own task (the token
 * travels only inside that task).
 */
export interface RuntimeConnect {
  type: "connect";
  protocol: typeof TASK_PROTOCOL;
  host: string;
  port: number;
  /** The runtime's name, said in the first line it sends: `envpack-runtime PROTOCOL ID`. */
  runtimeId: string;
  /** 32 random bytes, hex. */
  token: string;
}

/**
 * The runtime connection after that first line, one JSON document per line. The manager sends a
 * challenge; the runtime answers with HMAC-SHA256(token, nonce) (hex) in its hello; then the
 * manager sends TaskRequests one at a time, each answered by a TaskReply, and `exit` to end it.
 */
export type RuntimeWire =
  | { type: "challenge"; nonce: string }
  | {
      type: "hello";
      protocol: typeof TASK_PROTOCOL;
      answer: string;
      pid: number;
      /** Resident MB at rest, before any task. */
      restMB: number;
    }
  | { type: "exit" };

/** An autolabel category's state, as `label:chosen` events and `executor.summary()` report it. */
export interface CategorySummary {
  category: string;
  /** Tasks measured so far. */
  samples: number;
  /** The label tasks get now; null while still measuring (whole workers). */
  label: ResourceSpec | null;
  /** Why this label (or why none yet). */
  reason: string;
  /** Peaks measured: memory and disk in MB, cores. */
  peaks: { memory: number; cores: number; disk: number };
  /** Tasks that ran over their label and were retried larger. */
  overLabel: number;
}
