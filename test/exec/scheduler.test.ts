// The scheduler's fitting rules, as pure logic: whole workers by default, packing by resources,
// heterogeneous workers, no starvation of big tasks.

import { describe, expect, it } from "vitest";
import { BYPASS_PER_CORE, Scheduler, labelOn } from "../../src/exec/index.js";
import {
  fits,
  type ResourceSpec,
  type Resources,
} from "../../src/core/index.js";

const worker = (
  id: string,
  cores: number,
  memory = 8000,
): { id: string; resources: Resources } => ({
  id,
  resources: { cores, memory, disk: 10_000, gpus: 0 },
});

/** How many of `n` tasks with `spec` start at once on the given workers, per worker. */
function concurrent(
  workers: ReturnType<typeof worker>[],
  spec: ResourceSpec,
  n = 12,
): Record<string, number> {
  const scheduler = new Scheduler();
  workers.forEach((w) => scheduler.addWorker(w));
  for (let i = 0; i < n; i++)
    scheduler.submit({ id: `t${i}`, resources: spec });
  const counts: Record<string, number> = {};
  for (const { placement } of scheduler.schedule())
    counts[placement.workerId] = (counts[placement.workerId] ?? 0) + 1;
  return counts;
}

describe("Scheduler", () => {
  it("runs four 1-core tasks, two 2-core tasks or one unlabelled task at once on a 4-core worker", () => {
    const four = [worker("w4", 4)];
    expect(concurrent(four, { cores: 1 })).toEqual({ w4: 4 });
    expect(concurrent(four, { cores: 2 })).toEqual({ w4: 2 });
    expect(concurrent(four, {})).toEqual({ w4: 1 });
  });

  it("fits by memory too, and by the largest share a partial spec asks for", () => {
    expect(concurrent([worker("w4", 4, 8000)], { memory: 3000 })).toEqual({
      w4: 2,
    });
    // 3000 of 8000 MB is 37.5% of the worker: 1.5 cores, rounded up to 2.
    expect(labelOn({ memory: 3000 }, worker("w", 4, 8000).resources)).toEqual({
      cores: 2,
      memory: 3000,
      disk: 3750,
      gpus: 0,
    });
  });

  it("gives heterogeneous workers different counts", () => {
    expect(
      concurrent([worker("big", 4), worker("small", 2)], { cores: 1 }),
    ).toEqual({ big: 4, small: 2 });
    expect(
      concurrent([worker("big", 4), worker("small", 2)], { cores: 3 }),
    ).toEqual({ big: 1 });
    expect(concurrent([worker("big", 4), worker("small", 2)], {})).toEqual({
      big: 1,
      small: 1,
    });
  });

  it("holds resources until released, then starts the next task", () => {
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("w", 2));
    scheduler.submit({ id: "a", resources: { cores: 2 } });
    scheduler.submit({ id: "b", resources: { cores: 1 } });
    expect(scheduler.schedule().map((s) => s.taskId)).toEqual(["a"]);
    expect(scheduler.schedule()).toEqual([]);
    scheduler.release("a");
    expect(scheduler.schedule().map((s) => s.taskId)).toEqual(["b"]);
  });

  it("backfills past a waiting big task, but only so often: then it gets the worker", () => {
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("w", 4));
    scheduler.submit({ id: "small-0", resources: { cores: 1 } });
    scheduler.schedule();
    scheduler.submit({ id: "big", resources: { cores: 4 } });
    for (let i = 1; i <= 30; i++)
      scheduler.submit({ id: `small-${i}`, resources: { cores: 1 } });
    // A steady stream: whenever a task ends, whatever fits starts.
    const order: string[] = [];
    const running = ["small-0"];
    while (!order.includes("big")) {
      for (const { taskId } of scheduler.schedule()) {
        order.push(taskId);
        running.push(taskId);
      }
      if (order.includes("big")) break;
      scheduler.release(running.shift() as string);
    }
    const bypassed = order.indexOf("big");
    // Younger tasks used the idle cores at first...
    expect(bypassed).toBeGreaterThan(0);
    // ...but at most BYPASS_PER_CORE × cores of them, then the worker drained for the big task.
    expect(bypassed).toBeLessThanOrEqual(BYPASS_PER_CORE * 4);
  });

  it("lets small tasks use workers the blocked big task does not need", () => {
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("big", 4));
    scheduler.addWorker(worker("small", 2));
    scheduler.submit({ id: "hold", resources: { cores: 1 } });
    expect(scheduler.schedule()[0]?.placement.workerId).toBe("small");
    scheduler.submit({ id: "wide", resources: { cores: 4 } });
    scheduler.submit({ id: "x", resources: { cores: 1 } });
    const started = scheduler.schedule();
    expect(started.map((s) => [s.taskId, s.placement.workerId])).toEqual([
      ["wide", "big"],
      ["x", "small"],
    ]);
  });

  it("keeps the other workers busy while a waiting big task holds the worker it fits on", () => {
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("big", 4));
    scheduler.addWorker(worker("small", 2));
    const running: string[] = [];
    const where = new Map<string, string>();
    const run = () => {
      const started = scheduler.schedule();
      for (const { taskId, placement } of started) {
        running.push(taskId);
        where.set(taskId, placement.workerId);
      }
      return started.map((s) => s.taskId);
    };
    for (let i = 0; i < 6; i++)
      scheduler.submit({ id: `fill-${i}`, resources: { cores: 1 } });
    expect(run()).toHaveLength(6);
    scheduler.submit({ id: "wide", resources: { cores: 4 } });
    for (let i = 0; i < 60; i++)
      scheduler.submit({ id: `small-${i}`, resources: { cores: 1 } });
    const order: string[] = [];
    while (!order.includes("wide")) {
      scheduler.release(running.shift() as string);
      order.push(...run());
    }
    const limit = BYPASS_PER_CORE * 6;
    const passed = order.indexOf("wide");
    expect(passed).toBeGreaterThanOrEqual(limit);
    // While "big" drained for the wide task, "small" went on taking tasks...
    const held = order.slice(limit, passed);
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((id) => where.get(id) === "small")).toBe(true);
    // ...and the wide task started as soon as "big" was empty.
    expect(where.get("wide")).toBe("big");
    expect(passed).toBeLessThanOrEqual(limit + 4);
  });

  it("does not take a whole worker's memory for gpus: 0, and shares by GPUs when asked", () => {
    const w = worker("w", 4, 8000).resources;
    expect(labelOn({ cores: 1, gpus: 0 }, w)).toEqual({
      cores: 1,
      memory: 2000,
      disk: 2500,
      gpus: 0,
    });
    expect(concurrent([worker("w", 4)], { cores: 1, gpus: 0 })).toEqual({
      w: 4,
    });
    // Nothing above 0: a whole worker, without its GPUs.
    expect(labelOn({ gpus: 0 }, { ...w, gpus: 2 })).toEqual({ ...w, gpus: 0 });
    expect(labelOn({ gpus: 1 }, { ...w, gpus: 2 })).toEqual({
      cores: 2,
      memory: 4000,
      disk: 5000,
      gpus: 1,
    });
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("cpu", 8));
    expect(
      scheduler.anyFit({ id: "t", resources: { gpus: 1 } }),
    ).toBeUndefined();
  });

  it("reshapes queued tasks to a new label, keeping their order", () => {
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("w", 4));
    for (let i = 0; i < 6; i++)
      scheduler.submit({ id: `t${i}`, resources: {} });
    scheduler.submit({ id: "other", resources: { cores: 1 } });
    expect(scheduler.schedule().map((s) => s.taskId)).toEqual(["t0"]);
    // autolabel chose 1 core for t1..t5's category while they waited for a whole worker.
    scheduler.reshape(new Set(["t1", "t2", "t3", "t4", "t5"]), { cores: 1 });
    scheduler.release("t0");
    expect(scheduler.schedule().map((s) => s.taskId)).toEqual([
      "t1",
      "t2",
      "t3",
      "t4",
    ]);
    expect(scheduler.queued).toBe(2);
    scheduler.release("t1");
    expect(scheduler.schedule().map((s) => s.taskId)).toEqual(["t5"]);
  });

  it("keeps submission order through starts, withdrawals and retries in a long queue", () => {
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("w", 1));
    for (let i = 0; i < 3000; i++)
      scheduler.submit({ id: `t${i}`, resources: { cores: 1 } });
    const order: string[] = [];
    const step = () => {
      const [next] = scheduler.schedule();
      if (next !== undefined) {
        order.push(next.taskId);
        scheduler.release(next.taskId);
      }
      return next;
    };
    for (let i = 0; i < 2000; i++) step();
    expect(scheduler.withdraw("t2500")).toBe(true);
    expect(scheduler.withdraw("t1999")).toBe(false);
    // A retry goes before everything queued.
    scheduler.submit({ id: "retry", resources: { cores: 1 } }, true);
    while (step() !== undefined);
    expect(order.slice(1998, 2002)).toEqual([
      "t1998",
      "t1999",
      "retry",
      "t2000",
    ]);
    expect(order).toHaveLength(3000);
    expect(order).not.toContain("t2500");
    expect(scheduler.queued).toBe(0);
  });

  it("knows when a task fits no worker at all", () => {
    const scheduler = new Scheduler();
    scheduler.addWorker(worker("w", 2));
    expect(
      scheduler.anyFit({ id: "t", resources: { cores: 3 } }),
    ).toBeUndefined();
    expect(scheduler.anyFit({ id: "t", resources: { cores: 2 } })?.id).toBe(
      "w",
    );
  });

  it("leaves nothing startable after a round, however workers join, leave and tasks end (only changed workers are looked at again)", () => {
    let seed = 11;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const specs: ResourceSpec[] = [
      { cores: 1, memory: 1000 },
      { cores: 1, memory: 6000 },
      { cores: 2 },
      { cores: 4, memory: 2000 },
      { memory: 3000 },
      {},
    ];
    const scheduler = new Scheduler();
    const free = new Map<string, Resources>();
    const sizes = new Map<string, Resources>();
    const running = new Map<string, { worker: string; label: Resources }>();
    const queued = new Map<string, ResourceSpec>();
    const join = (id: string) => {
      const w = worker(id, [2, 4, 8][Math.floor(next() * 3)] as number);
      w.resources.memory = w.resources.cores * 2000;
      scheduler.addWorker(w);
      free.set(id, { ...w.resources });
      sizes.set(id, w.resources);
    };
    for (let i = 0; i < 6; i++) join(`w${i}`);
    let joined = 6;
    let n = 0;
    for (let round = 0; round < 400; round++) {
      for (let k = Math.floor(next() * 4); k > 0; k--) {
        const spec = specs[Math.floor(next() * specs.length)] as ResourceSpec;
        scheduler.submit({ id: `t${++n}`, resources: spec });
        queued.set(`t${n}`, spec);
      }
      const ids = [...running.keys()];
      for (let k = Math.floor(next() * 3); k > 0 && ids.length > 0; k--) {
        const id = ids.splice(Math.floor(next() * ids.length), 1)[0] as string;
        const { worker: w, label } = running.get(id) as {
          worker: string;
          label: Resources;
        };
        running.delete(id);
        scheduler.release(id);
        const f = free.get(w);
        if (f !== undefined)
          for (const key of ["cores", "memory", "disk", "gpus"] as const)
            f[key] += label[key];
      }
      if (next() < 0.05) {
        const gone = [...free.keys()][0] as string;
        for (const id of scheduler.removeWorker(gone)) running.delete(id);
        free.delete(gone);
        sizes.delete(gone);
      }
      if (next() < 0.05) join(`w${joined++}`);
      for (const { taskId, placement } of scheduler.schedule()) {
        const f = free.get(placement.workerId) as Resources;
        for (const key of ["cores", "memory", "disk", "gpus"] as const) {
          f[key] -= placement.label[key];
          expect(f[key]).toBeGreaterThanOrEqual(-1e-9);
        }
        queued.delete(taskId);
        running.set(taskId, {
          worker: placement.workerId,
          label: placement.label,
        });
      }
      // A queued task that fits somewhere now may only be held back by the one reserved worker.
      const startable = new Set<string>();
      for (const spec of queued.values())
        for (const [id, f] of free)
          if (fits(labelOn(spec, sizes.get(id) as Resources), f))
            startable.add(id);
      expect(startable.size).toBeLessThanOrEqual(1);
    }
    expect(n).toBeGreaterThan(400);
    expect(running.size + queued.size).toBeGreaterThan(0);
  });
});

describe("Scheduler with worker queues (queuePerCore)", () => {
  const ids = (placed: ReturnType<Scheduler["schedule"]>) =>
    placed.map((p) => p.taskId);

  it("queues one task per core beyond those running, and the worker's queue starts them in order as slots free", () => {
    const scheduler = new Scheduler({ queuePerCore: 1 });
    scheduler.addWorker(worker("w2", 2));
    for (let i = 0; i < 6; i++)
      scheduler.submit({
        id: `t${i}`,
        resources: { cores: 1 },
        queueable: true,
      });
    expect(ids(scheduler.schedule())).toEqual(["t0", "t1", "t2", "t3"]);
    expect(scheduler.queued).toBe(2);
    // t0 ends: the worker starts t2 itself; its queue has room for one more.
    scheduler.release("t0");
    expect(ids(scheduler.schedule())).toEqual(["t4"]);
    // A queued task that ends (canceled, say) frees its place, not a core.
    scheduler.release("t4");
    expect(ids(scheduler.schedule())).toEqual(["t5"]);
    expect(scheduler.schedule()).toEqual([]);
  });

  it("queues tasks by their share of a queue place: a third each, three to a place", () => {
    const scheduler = new Scheduler({ queuePerCore: 1 });
    scheduler.addWorker(worker("w1", 1));
    const third = (id: string) => ({
      id,
      resources: { cores: 1 },
      queueable: true,
      queueShare: 1 / 3,
    });
    for (let i = 0; i < 6; i++) scheduler.submit(third(`t${i}`));
    // One runs; three share the one place.
    expect(ids(scheduler.schedule())).toEqual(["t0", "t1", "t2", "t3"]);
    scheduler.release("t0");
    scheduler.release("t1");
    // The worker started t1 when t0 ended, then t2: two thirds of the place are free again.
    expect(ids(scheduler.schedule())).toEqual(["t4", "t5"]);
    // The place is full again: nothing more queues.
    scheduler.submit({ id: "whole", resources: { cores: 1 }, queueable: true });
    expect(scheduler.schedule()).toEqual([]);
  });

  it("queues only tasks that may be queued, where the worker's whole size holds them, never behind a larger one", () => {
    const scheduler = new Scheduler({ queuePerCore: 2 });
    scheduler.addWorker(worker("w2", 2));
    scheduler.submit({ id: "run", resources: { cores: 2 }, queueable: true });
    scheduler.submit({ id: "big", resources: { cores: 2 }, queueable: true });
    scheduler.submit({ id: "small", resources: { cores: 1 }, queueable: true });
    scheduler.submit({ id: "huge", resources: { cores: 3 }, queueable: true });
    scheduler.submit({ id: "fixed", resources: { cores: 1 } });
    // "small" behind "big" would start first each time a core frees.
    expect(ids(scheduler.schedule())).toEqual(["run", "big"]);
    scheduler.release("run");
    // big starts on the worker; now small may queue behind nothing larger.
    expect(ids(scheduler.schedule())).toEqual(["small"]);
    expect(scheduler.removeWorker("w2").sort()).toEqual(["big", "small"]);
  });
});
