// The execution layer: scheduling tasks onto workers and the backends that run them.

export type {
  BackendAddress,
  BackendListener,
  ExecBackend,
  Placement,
  QueuedTask,
  TaskCounts,
  WorkerInfo,
} from "./backend.js";
export {
  TaskEngine,
  taskError,
  type EngineTask,
  type TaskEngineOptions,
} from "./task-engine.js";
export {
  BACKENDS,
  openBackend,
  type BackendName,
  type OpenBackendOptions,
} from "./open-backend.js";
export {
  BYPASS_PER_CORE,
  Scheduler,
  labelOn,
  type SchedulableTask,
} from "./scheduler.js";
export {
  Categories,
  RELABEL_EVERY,
  type AutolabelMode,
  type CategorySummary,
} from "./categories.js";
export {
  LocalBackend,
  detectResources,
  type LocalBackendOptions,
  type WorkerSpec,
} from "./local/local-backend.js";
export {
  WorkQueueBackend,
  type ManagerSnapshot,
  type StatusClient,
  type StatusHandler,
  type WorkQueueOptions,
  MAX_BATCH,
} from "./workqueue/index.js";
