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

/** The keys a resource spec may have. */
export const RESOURCE_KEYS = ["cores", "memory", "disk", "gpus"] as const;

/** True when `need` fits in `free`, key by key. */
export function fits(need: Resources, free: Resources): boolean {
  return RESOURCE_KEYS.every((k) => need[k] <= free[k] + 1e-9);
}

/** `a + sign·b`, key by key. */
export function addResources(a: Resources, b: Resources, sign = 1): Resources {
  return {
    cores: a.cores + sign * b.cores,
    memory: a.memory + sign * b.memory,
    disk: a.disk + sign * b.disk,
    gpus: a.gpus + sign * b.gpus,
  };
}
