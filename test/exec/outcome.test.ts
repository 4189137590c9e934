// Outcome decoding shared by every backend: how a process's end becomes a TaskResult's outcome.

import { describe, expect, it } from "vitest";
import { TASK_PROTOCOL } from "../../src/core/index.js";
import {
  noUsage,
  processOutcome,
  signalName,
  stderrTail,
} from "../../src/exec/outcome.js";

const usage = noUsage(5);

describe("processOutcome", () => {
  it("a command: ok on exit 0; else its exit code, or its signal as 128+N, stdout kept", () => {
    expect(
      processOutcome({
        kind: "command",
        exitCode: 0,
        signal: undefined,
        stdout: "hi",
        usage,
      }),
    ).toEqual({
      ok: true,
      reason: "ok",
      value: { exitCode: 0, stdout: "hi" },
      usage,
    });
    expect(
      processOutcome({
        kind: "command",
        exitCode: 3,
        signal: undefined,
        stdout: "x",
        usage,
      }),
    ).toMatchObject({
      ok: false,
      reason: "exit",
      exitCode: 3,
      value: { exitCode: 3, stdout: "x" },
    });
    const killed = processOutcome({
      kind: "command",
      exitCode: undefined,
      signal: "SIGKILL",
      program: "sleep",
      usage,
    });
    expect(killed).toMatchObject({
      reason: "signal",
      signal: "SIGKILL",
      value: { exitCode: 137, stdout: "" },
      error: { name: "ExitError", message: "sleep was killed by SIGKILL" },
    });
  });

  it("an app: its runner's answer; without one, a runtime that ended during the task", () => {
    const reply = {
      type: "result",
      protocol: TASK_PROTOCOL,
      id: "t1",
    } as const;
    expect(
      processOutcome({
        kind: "module",
        exitCode: 0,
        signal: undefined,
        reply: { ...reply, ok: true, value: 4 },
        usage,
      }),
    ).toEqual({ ok: true, reason: "ok", value: 4, usage });
    expect(
      processOutcome({
        kind: "python",
        exitCode: 0,
        signal: undefined,
        reply: {
          ...reply,
          ok: false,
          error: { name: "ValueError", message: "no" },
        },
        stderrTail: "Traceback",
        usage,
      }),
    ).toMatchObject({
      ok: false,
      reason: "exit",
      error: { name: "ValueError" },
      stderrTail: "Traceback",
    });
    expect(
      processOutcome({ kind: "python", exitCode: 1, signal: undefined, usage }),
    ).toMatchObject({
      reason: "exit",
      exitCode: 1,
      error: {
        name: "RuntimeExit",
        message: "the python runtime exited with code 1 during the task",
      },
    });
  });

  it("names signals and cleans a stderr tail of escapes and control characters", () => {
    expect(signalName(9)).toBe("SIGKILL");
    expect(signalName(200)).toBe("signal 200");
    expect(stderrTail("\u001b[31mred\u001b[0m\u0007 line\n")).toBe("red line");
    expect(stderrTail("x".repeat(3000)).length).toBeLessThanOrEqual(2000);
  });
});
