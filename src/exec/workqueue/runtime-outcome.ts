// How a task in a remote warm runtime ended, as an Outcome: from the runtime's reply, or from how
// the runtime's own Work Queue task ended when no reply came.

import type { TaskReply, TaskUsage } from "../../core/index.js";
import { processOutcome, type Outcome } from "../outcome.js";

/** A task's outcome from its runtime's reply, measured by the runtime (wallMs by the manager). */
export function replyOutcome(
  kind: "module" | "python",
  reply: TaskReply,
  wallMs: number,
): Outcome {
  const cpuMs = reply.cpuMs ?? 0;
  return processOutcome({
    kind,
    exitCode: 0,
    signal: undefined,
    reply,
    usage: {
      peakMemory: Math.max(reply.peakMB ?? 0, reply.rssMB ?? 0),
      cpuMs,
      disk: reply.diskMB ?? 0,
      wallMs,
      cores: wallMs > 0 ? cpuMs / wallMs : 0,
    },
  });
}

/**
 * A task's outcome when its runtime's Work Queue task ended without answering it: that task's own
 * failure (a signal, over its label, its worker lost) when it failed, else `name` and `message`
 * (a runtime that exited 0 still left the task unanswered).
 */
export function runtimeEnded(
  ended: Outcome,
  name: "RuntimeStartError" | "RuntimeExited",
  message: string,
): Outcome {
  return ended.ok
    ? {
        ok: false,
        reason: "exit",
        error: { name, message },
        usage: ended.usage,
      }
    : ended;
}

/** The runtime's connection dropped and its worker reported nothing for `waitedMs`. */
export function runtimeLost(usage: TaskUsage, waitedMs: number): Outcome {
  return {
    ok: false,
    reason: "exit",
    error: {
      name: "RuntimeLost",
      message: `the warm runtime's connection dropped and its worker reported nothing for ${waitedMs / 1000} s`,
    },
    usage,
  };
}
