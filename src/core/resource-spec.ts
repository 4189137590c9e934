// Resource specs given by users (an app's or a worker's declaration), checked once where they enter.

import { UsageError } from "./errors.js";
import {
  RESOURCE_KEYS,
  type ResourceSpec,
  type Resources,
} from "./resources.js";

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
