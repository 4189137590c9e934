// Drives a WorkQueueBackend directly (no task engine): workers' joins and leaves as events, tasks
// placed by hand with a label.

import { EventEmitter, once } from "node:events";
import { afterEach } from "vitest";
import type {
  EnvpackEvent,
  Resources,
  TaskPayload,
  TaskResult,
  TaskSpec,
} from "../../../src/core/index.js";
import {
  WorkQueueBackend,
  type WorkQueueOptions,
  type WorkerInfo,
} from "../../../src/exec/index.js";
import { emptyQueue } from "../../helpers/empty-queue.js";

const open = new Set<WorkQueueBackend>();

afterEach(async () => {
  const backends = [...open];
  open.clear();
  await Promise.all(backends.map((b) => b.shutdown()));
});

export interface Harness {
  backend: WorkQueueBackend;
  port: number;
  events: EnvpackEvent[];
  workers: Map<string, WorkerInfo>;
  /** Resolves with the next worker to join (or one that joined and was not yet taken). */
  nextWorker(): Promise<WorkerInfo>;
  /** Resolves when a worker with this id leaves. */
  left(id: string): Promise<void>;
  /** Resolves with the next warn event. */
  nextWarning(): Promise<Extract<EnvpackEvent, { type: "warn" }>>;
  run(
    payload: TaskPayload,
    worker: WorkerInfo,
    options?: {
      label?: Partial<Resources>;
      signal?: AbortSignal;
      task?: Partial<TaskSpec>;
    },
  ): Promise<TaskResult>;
}

let ids = 0;

export async function harness(
  options: Partial<WorkQueueOptions> = {},
): Promise<Harness> {
  const bus = new EventEmitter();
  const events: EnvpackEvent[] = [];
  const workers = new Map<string, WorkerInfo>();
  const unclaimed: WorkerInfo[] = [];
  const warnings: Array<Extract<EnvpackEvent, { type: "warn" }>> = [];
  const backend = new WorkQueueBackend({
    port: 0,
    ...options,
    onEvent: (event) => {
      events.push(event);
      if (event.type === "warn") {
        warnings.push(event);
        bus.emit("warn");
      }
      options.onEvent?.(event);
    },
  });
  open.add(backend);
  await backend.start({
    workerJoined: (info) => {
      workers.set(info.id, info);
      unclaimed.push(info);
      bus.emit("joined");
    },
    workerLeft: (id) => {
      workers.delete(id);
      bus.emit(`left:${id}`);
    },
    ...emptyQueue,
  });
  return {
    backend,
    port: backend.address()?.port as number,
    events,
    workers,
    async nextWorker() {
      while (unclaimed.length === 0) await once(bus, "joined");
      return unclaimed.shift() as WorkerInfo;
    },
    async left(id) {
      if (!workers.has(id)) return;
      await once(bus, `left:${id}`);
    },
    async nextWarning() {
      while (warnings.length === 0) await once(bus, "warn");
      return warnings.shift() as Extract<EnvpackEvent, { type: "warn" }>;
    },
    run(payload, worker, runOptions = {}) {
      const label: Resources = {
        cores: 1,
        memory: 100,
        disk: 100,
        gpus: 0,
        ...runOptions.label,
      };
      const task: TaskSpec = {
        id: `t${++ids}`,
        category: "default",
        payload,
        resources: label,
        attempt: 0,
        ...runOptions.task,
      };
      return backend.runTask(
        task,
        { workerId: worker.id, label },
        runOptions.signal ?? new AbortController().signal,
      );
    },
  };
}
