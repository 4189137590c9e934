// The execution layer: scheduling tasks onto workers and the backends that run them.

export type {
  BackendListener,
  ExecBackend,
  Placement,
  WorkerInfo,
} from "./backend.js";
