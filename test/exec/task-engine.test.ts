// The task engine's policies against a fake backend with no processes: the test decides when and
// how each placed task ends, and when workers join and leave.

import { describe, expect, it } from "vitest";
import {
  TASK_PROTOCOL,
  isEnvpackError,
  type EnvpackEvent,
  type TaskEndReason,
  type TaskPayload,
  type TaskResult,
  type TaskSpec,
} from "../../src/core/index.js";
import {
  TaskEngine,
  type BackendListener,
  type ExecBackend,
  type Placement,
  type TaskEngineOptions,
  type WorkerInfo,
} from "../../src/exec/index.js";

interface Placed {
  task: TaskSpec;
  placement: Placement;
  signal: AbortSignal;
  end(reason: TaskEndReason, usage?: { memory?: number; cores?: number }): void;
}

/** Runs nothing: every placed task waits in `placed` until the test ends it. */
class FakeBackend implements ExecBackend {
  readonly placed: Placed[] = [];
  listener: BackendListener | undefined;
  readonly #ends = new Map<string, Placed["end"]>();

  constructor(
    readonly fixedPool: boolean,
    readonly initial: WorkerInfo[] = [],
  ) {}

  async start(listener: BackendListener): Promise<void> {
    this.listener = listener;
    for (const w of this.initial) listener.workerJoined(w);
  }

  join(worker: WorkerInfo): void {
    this.listener?.workerJoined(worker);
  }

  /** The worker leaves; its tasks end "worker-lost", as a backend must report them. */
  leave(id: string): void {
    this.listener?.workerLeft(id);
    for (const p of this.placed.filter((p) => p.placement.workerId === id))
      p.end("worker-lost");
  }

  runTask(
    task: TaskSpec,
    placement: Placement,
    signal: AbortSignal,
  ): Promise<TaskResult> {
    return new Promise((resolve) => {
      const placed: Placed = {
        task: { ...task, resources: { ...task.resources } },
        placement,
        signal,
        end: (reason, usage = {}) => {
          const at = this.placed.indexOf(placed);
          if (at < 0) return;
          this.placed.splice(at, 1);
          resolve(result(task, placement, reason, usage));
        },
      };
      this.placed.push(placed);
      signal.addEventListener("abort", () => placed.end("canceled"), {
        once: true,
      });
    });
  }

  async shutdown(): Promise<void> {
    for (const p of [...this.placed]) p.end("canceled");
  }

  /** The one placed task (fails the test when there is not exactly one). */
  only(): Placed {
    expect(this.placed).toHaveLength(1);
    return this.placed[0] as Placed;
  }
}

function result(
  task: TaskSpec,
  placement: Placement,
  reason: TaskEndReason,
  usage: { memory?: number; cores?: number },
): TaskResult {
  return {
    protocol: TASK_PROTOCOL,
    id: task.id,
    ok: reason === "ok",
    reason,
    value: reason === "ok" ? `${task.id}@${task.attempt}` : undefined,
    signal: reason === "signal" ? "SIGKILL" : undefined,
    durationMs: 10,
    usage: {
      peakMemory: usage.memory ?? 50,
      cores: usage.cores ?? 1,
      disk: 1,
      wallMs: 10,
      cpuMs: 10,
    },
    workerId: placement.workerId,
    label: placement.label,
    attempt: task.attempt,
  };
}

const worker = (id: string, cores: number, memory = 8000): WorkerInfo => ({
  id,
  resources: { cores, memory, disk: 10_000, gpus: 0 },
});

const module: TaskPayload = {
  kind: "module",
  module: "/app.mjs",
  exportName: "f",
  args: [],
};

async function engineWith(
  backend: FakeBackend,
  options: Partial<TaskEngineOptions> = {},
): Promise<{ engine: TaskEngine; events: EnvpackEvent[] }> {
  const events: EnvpackEvent[] = [];
  const engine = new TaskEngine({
    backend,
    onEvent: (e) => events.push(e),
    ...options,
  });
  await engine.start();
  return { engine, events };
}

/** Lets settled promises run their reactions. */
const settle = () => new Promise((r) => setImmediate(r));

function states(events: EnvpackEvent[], id: string): string[] {
  return events.flatMap((e) =>
    e.type === "task:state" && e.id === id ? [e.state] : [],
  );
}

const task = (resources: TaskSpec["resources"] = { cores: 1 }) => ({
  name: "app",
  category: "app",
  payload: module,
  resources,
});

describe("TaskEngine", () => {
  it("retries a crash up to maxRetries, then resolves with the last attempt's failure", async () => {
    const backend = new FakeBackend(true, [worker("w", 2)]);
    const { engine, events } = await engineWith(backend, { maxRetries: 1 });
    const done = engine.submit(task());
    backend.only().end("signal");
    await settle();
    expect(backend.only().task.attempt).toBe(1);
    backend.only().end("signal");
    const last = await done;
    expect(last).toMatchObject({ ok: false, reason: "signal", attempt: 1 });
    expect(states(events, last.id)).toEqual([
      "queued",
      "running",
      "failed",
      "retry",
      "running",
      "failed",
    ]);
    expect(engine.counts()).toMatchObject({ submitted: 1, failed: 1 });
  });

  it("does not retry a command's non-zero exit (the app's own answer)", async () => {
    const backend = new FakeBackend(true, [worker("w", 2)]);
    const { engine } = await engineWith(backend, { maxRetries: 3 });
    const done = engine.submit({
      ...task(),
      payload: { kind: "command", argv: ["false"] },
    });
    backend.only().end("exit");
    expect(await done).toMatchObject({ reason: "exit", attempt: 0 });
  });

  it("under autolabel, runs a task over its label again on a whole worker, not counted as a retry", async () => {
    const backend = new FakeBackend(true, [worker("w", 4, 8000)]);
    const { engine, events } = await engineWith(backend, {
      autolabel: true,
      maxRetries: 0,
    });
    // The first task measures the category on a whole worker.
    const first = engine.submit(task({}));
    expect(backend.only().placement.label.cores).toBe(4);
    backend.only().end("ok", { memory: 500, cores: 1 });
    await first;
    expect(events.some((e) => e.type === "label:chosen")).toBe(true);
    // The next one gets the label, goes over it, and runs again with the whole worker.
    const second = engine.submit(task({}));
    const labelled = backend.only();
    expect(labelled.placement.label.cores).toBeLessThan(4);
    labelled.end("over-resources", { memory: 900 });
    await settle();
    const again = backend.only();
    expect(again.task.attempt).toBe(1);
    expect(again.task.resources).toEqual({});
    expect(again.placement.label).toEqual(worker("w", 4, 8000).resources);
    again.end("ok");
    expect(await second).toMatchObject({ ok: true, attempt: 1 });
    expect(engine.summary()[0]?.overLabel).toBe(1);
  });

  it("without autolabel, a task over its label fails", async () => {
    const backend = new FakeBackend(true, [worker("w", 4)]);
    const { engine } = await engineWith(backend);
    const done = engine.submit(task({ cores: 1, memory: 100 }));
    backend.only().end("over-resources");
    expect(await done).toMatchObject({ reason: "over-resources", attempt: 0 });
  });

  it("queues the tasks of a lost worker again without counting a failed attempt", async () => {
    const backend = new FakeBackend(false, [worker("a", 1), worker("b", 1)]);
    const { engine } = await engineWith(backend, { maxRetries: 0 });
    const calls = [engine.submit(task()), engine.submit(task())];
    expect(backend.placed.map((p) => p.placement.workerId).sort()).toEqual([
      "a",
      "b",
    ]);
    backend.leave("a");
    await settle();
    // Its task waits for b (a is gone), then runs there as attempt 1.
    const onB = backend.only();
    expect(onB.placement.workerId).toBe("b");
    onB.end("ok");
    await settle();
    const moved = backend.only();
    expect(moved).toMatchObject({ placement: { workerId: "b" } });
    expect(moved.task.attempt).toBe(1);
    moved.end("ok");
    const results = await Promise.all(calls);
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect(engine.counts()).toMatchObject({ done: 2, failed: 0 });
  });

  it("keeps tasks submitted before any worker joins, and runs them when one does", async () => {
    const backend = new FakeBackend(false);
    const { engine } = await engineWith(backend);
    const small = engine.submit(task({ cores: 1 }));
    const big = engine.submit(task({ cores: 8 }));
    await settle();
    expect(backend.placed).toHaveLength(0);
    expect([...(backend.listener?.waiting() ?? [])]).toHaveLength(2);
    expect(backend.listener?.counts()).toMatchObject({
      submitted: 2,
      waiting: 2,
      running: 0,
    });
    backend.join(worker("small", 2));
    backend.only().end("ok");
    expect(await small).toMatchObject({ ok: true, workerId: "small" });
    // Nothing holds the 8-core task yet: it waits for a worker that does.
    expect(backend.placed).toHaveLength(0);
    expect(
      [...(backend.listener?.waiting() ?? [])].map((q) => q.spec.resources),
    ).toEqual([{ cores: 8 }]);
    backend.join(worker("big", 8));
    backend.only().end("ok");
    expect(await big).toMatchObject({ ok: true, workerId: "big" });
  });

  it("on a fixed pool, refuses a task no worker can hold", async () => {
    const backend = new FakeBackend(true, [worker("w", 2)]);
    const { engine } = await engineWith(backend);
    const error = await engine.submit(task({ cores: 8 })).catch((e) => e);
    expect(isEnvpackError(error) && error.code).toBe("ENVPACK_TASK_TOO_LARGE");
  });

  it("cancels one queued task, one running task, or everything and the retries to come", async () => {
    const backend = new FakeBackend(true, [worker("w", 1)]);
    const { engine } = await engineWith(backend, { maxRetries: 5 });
    const running = engine.submit(task());
    const queued = engine.submit(task());
    const last = engine.submit(task());
    const queuedId = [...(backend.listener?.waiting() ?? [])][0]?.spec.id;
    engine.cancel(queuedId);
    const error = await queued.catch((e) => e);
    expect(isEnvpackError(error) && error.code).toBe("ENVPACK_TASK_CANCELED");
    const first = backend.only();
    engine.cancel(first.task.id);
    expect(first.signal.aborted).toBe(true);
    expect(await running).toMatchObject({ reason: "canceled" });
    // The last one started; a crash would be retried, but everything is canceled.
    const third = backend.only();
    engine.cancel();
    expect(third.signal.aborted).toBe(true);
    expect(await last).toMatchObject({ reason: "canceled", attempt: 0 });
    expect(backend.placed).toHaveLength(0);
    expect(engine.counts()).toMatchObject({ canceled: 3, waiting: 0 });
  });

  it("reports the backend's address once started", async () => {
    const backend = Object.assign(new FakeBackend(false), {
      address: () => ({ host: "127.0.0.1", port: 9123 }),
    });
    const { engine } = await engineWith(backend);
    expect(engine.address()).toEqual({ host: "127.0.0.1", port: 9123 });
    const local = await engineWith(new FakeBackend(true, [worker("w", 1)]));
    expect(local.engine.address()).toBeUndefined();
  });
});
