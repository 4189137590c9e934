// The Work Queue backend: a manager for real work_queue_worker processes (protocol 9).

export {
  WorkQueueBackend,
  type ManagerSnapshot,
  type StatusClient,
  type StatusHandler,
  type WorkQueueOptions,
} from "./manager.js";
export { PROTOCOL_VERSION } from "./protocol.js";
