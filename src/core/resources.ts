// Resource amounts of tasks and workers, in Parsl's units: cores (count), memory and disk (MB).

/** A whole amount: what a worker has or what a task runs with (its label). */
export interface Resources {
  /** Cores, an integer ≥ 1 for a task. */
  cores: number;
  /** Memory in MB. */
  memory: number;
  /** Disk in MB (what the task may write in its sandbox). */
  disk: number;
  /** GPUs; 0 when none. */
  gpus: number;
}

/** What an app or a call declares; an absent key is unknown (a task without any takes a whole worker). */
export type ResourceSpec = Partial<Resources>;
