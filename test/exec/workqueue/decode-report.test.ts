// How a task's report from the worker becomes its outcome, when resource_monitor failed under it.

import { describe, expect, it } from "vitest";
import type { TaskSpec } from "../../../src/core/index.js";
import {
  decodeReport,
  OUT,
  type WorkerReport,
} from "../../../src/exec/workqueue/task-command.js";

const task: TaskSpec = {
  id: "t1",
  category: "default",
  payload: { kind: "command", shell: "kill -SEGV $$" },
  resources: {},
  attempt: 0,
};

function report(files: Record<string, string>): WorkerReport {
  return {
    status: 0,
    exitCode: 134,
    execUsec: 20_000,
    stdout: Buffer.alloc(0),
    files: new Map(
      Object.entries(files).map(([name, text]) => [name, Buffer.from(text)]),
    ),
  };
}

describe("decodeReport when resource_monitor died", () => {
  it("loses the attempt without a summary: the program's end is unknown", () => {
    const { outcome } = decodeReport(
      task,
      report({ [OUT.monitorDied]: "134\n" }),
    );
    expect(outcome).toMatchObject({
      ok: false,
      reason: "worker-lost",
      error: {
        message:
          "resource_monitor died of SIGABRT on the worker before it wrote its summary",
      },
    });
  });

  it("fails the third attempt that loses its monitor, so a program that kills it ends", () => {
    const { outcome } = decodeReport(
      { ...task, attempt: 2 },
      report({ [OUT.monitorDied]: "139\n" }),
    );
    expect(outcome).toMatchObject({
      ok: false,
      reason: "exit",
      error: {
        name: "MonitorFailed",
        message:
          "resource_monitor died of SIGSEGV on the worker before it wrote its summary, attempt 3 of 3",
      },
    });
  });

  it("takes the program's end from a summary written before the monitor died", () => {
    const summary = JSON.stringify({
      exit_type: "signal",
      signal: 11,
      wall_time: [0.02, "s"],
      memory: [3, "MB"],
    });
    const { outcome } = decodeReport(
      task,
      report({ [OUT.monitorDied]: "134\n", [OUT.summary]: summary }),
    );
    expect(outcome).toMatchObject({ reason: "signal", signal: "SIGSEGV" });
  });

  it("reads a task without the marker as before: 128+N is the program's signal", () => {
    const { outcome } = decodeReport(task, report({}));
    expect(outcome).toMatchObject({ reason: "signal", signal: "SIGABRT" });
  });
});
