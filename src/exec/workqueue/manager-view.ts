// What a manager shows of itself to status answers: its clients that are not workers, and a
// snapshot of its state (kept apart from manager.ts so that status-service.ts needs no import of it).

import type { Resources } from "../../core/light.js";

/** A client on the manager's port that is not a worker (work_queue_status, a factory). */
export interface StatusClient {
  address: string;
  /** True when it passed the password exchange (false when none is set). */
  authenticated: boolean;
  /** Writes the answer and closes the connection. */
  reply(body: string): void;
}

/** Answers one request line (`queue_status`, `worker_status`, …) of a non-worker client. */
export type StatusHandler = (line: string, client: StatusClient) => void;

/** The manager's state, for status answers and tests. */
export interface ManagerSnapshot {
  host: string;
  port: number;
  workers: Array<{
    id: string;
    hostname: string;
    address: string;
    os: string;
    arch: string;
    resources: Resources;
    tasksRunning: number;
    tasksSent: number;
    bytesSent: number;
    /** Per cache name, how many times it was sent on this connection. */
    puts: Record<string, number>;
  }>;
  tasksRunning: number;
}
