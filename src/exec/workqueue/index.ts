// The Work Queue backend: a manager for real work_queue_worker processes (protocol 9).

export { WorkQueueBackend } from "./manager.js";
export type { WorkQueueOptions } from "./manager-options.js";
export type {
  ManagerSnapshot,
  StatusClient,
  StatusHandler,
} from "./manager-view.js";
export { PROTOCOL_VERSION } from "./protocol.js";
export { MAX_BATCH } from "./command-batches.js";
