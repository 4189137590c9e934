// zod, loaded the first time a schema is used: importing envpack (for an Executor) or starting
// the CLI does not load it; and exported schemas that build themselves on first use.

import { createRequire } from "node:module";
import type { z } from "zod";

/** What {@link zod} returns: zod's `z`. */
export type Zod = typeof z;

/**
 * zod's `z`, loaded on the first call: synchronously, since a schema is used synchronously. The
 * CLI bundle defines `require`, and esbuild bundles zod through the literal `require("zod")`; as
 * plain ES modules (the library), zod's CommonJS build loads. Every schema takes zod from here,
 * so one copy loads either way.
 */
export const zod = once(
  () =>
    (
      (typeof require === "function"
        ? require("zod")
        : createRequire(import.meta.url)("zod")) as { z: Zod }
    ).z,
);

/** `build`, called once, on the first call of the function returned. */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: build() }).value;
}

/**
 * An object that stands for `build()`'s result and builds it on first use: for an exported schema
 * whose module must not load zod when it is imported. Property reads, `in`, key listing and
 * `instanceof` are those of the built object.
 */
export function lazyObject<T extends object>(build: () => T): T {
  const target = once(build);
  return new Proxy({} as T, {
    get: (_, key) => Reflect.get(target(), key),
    has: (_, key) => Reflect.has(target(), key),
    ownKeys: () => Reflect.ownKeys(target()),
    getOwnPropertyDescriptor: (_, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(target(), key);
      // A proxy may not report a property its own (empty) target lacks as non-configurable.
      return descriptor === undefined
        ? undefined
        : { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(target()),
    set: (_, key, value) => Reflect.set(target(), key, value),
  });
}
