// Resource amounts of tasks and workers, in Parsl's units: cores (count), memory and disk (MB).

import { UsageError } from "./errors.js";

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

/**
 * Checks a spec given by a user: only {@link RESOURCE_KEYS}; `cores` and `gpus` whole numbers
 * (`cores` ≥ 1), `memory` and `disk` positive numbers of MB.
 * @throws UsageError ENVPACK_USAGE_BAD_RESOURCES naming the key, the value and what is allowed
 */
export function parseResourceSpec(value: unknown, where: string): ResourceSpec {
  const bad = (message: string) =>
    new UsageError("ENVPACK_USAGE_BAD_RESOURCES", `${where}: ${message}`, {
      hint: "Resources are { cores: integer ≥ 1, memory: MB, disk: MB, gpus: integer ≥ 0 }, as Parsl's resource specification.",
    });
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw bad(`resources must be an object, got ${JSON.stringify(value)}`);
  const spec: ResourceSpec = {};
  for (const [key, amount] of Object.entries(value)) {
    if (!(RESOURCE_KEYS as readonly string[]).includes(key))
      throw bad(
        `unknown resource ${JSON.stringify(key)} (allowed: ${RESOURCE_KEYS.join(", ")})`,
      );
    if (amount === undefined) continue;
    const whole = key === "cores" || key === "gpus";
    const least = key === "gpus" ? 0 : key === "cores" ? 1 : Number.MIN_VALUE;
    if (
      typeof amount !== "number" ||
      !Number.isFinite(amount) ||
      amount < least ||
      (whole && !Number.isInteger(amount))
    )
      throw bad(
        `${key} must be ${whole ? `an integer ≥ ${least}` : "a positive number of MB"}, got ${JSON.stringify(amount)}`,
      );
    spec[key as keyof Resources] = amount;
  }
  return spec;
}

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
