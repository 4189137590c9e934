// An Executor on the Work Queue backend for tests with real workers: its events, the workers
// that joined, and a wait for them.

import { once, EventEmitter } from "node:events";
import { Executor, type EnvpackEvent } from "../../../src/index.js";

export type StateEvent = Extract<EnvpackEvent, { type: "task:state" }>;

/** An executor listening on a free port, its events, and a wait for N workers to join. */
export async function manager(
  options: { autolabel?: boolean; monitor?: boolean } = {},
) {
  const bus = new EventEmitter();
  const events: EnvpackEvent[] = [];
  let joined = 0;
  const executor = new Executor({
    backend: "workqueue",
    port: 0,
    ...options,
    onEvent: (event) => {
      events.push(event);
      if (event.type === "debug" && / joined from /.test(event.message)) {
        joined++;
        bus.emit("joined");
      }
      if (event.type === "task:state") bus.emit("state", event);
    },
  });
  const { port } = await executor.listening();
  return {
    executor,
    events,
    port: port as number,
    bus,
    joinedIds() {
      return events.flatMap((e) =>
        e.type === "debug"
          ? (/^worker (\S+) joined/.exec(e.message)?.[1] ?? [])
          : [],
      );
    },
    async workers(n: number) {
      while (joined < n) await once(bus, "joined");
    },
    results() {
      return events.filter(
        (e): e is StateEvent & { result: NonNullable<StateEvent["result"]> } =>
          e.type === "task:state" && e.result !== undefined,
      );
    },
  };
}
