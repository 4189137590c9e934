// The packages a Python manifest lists: the interpreter, what the app imports, declares or a traced
// run loaded, closed over their dependencies, each with the reason it is there.

import { compare, type PackageEntry } from "../../core/light.js";
import type { CondaPrefix } from "../conda/index.js";

/** The roots a Python scan found, by package id → needed only optionally. */
export interface PackageRoots {
  /** Imported by the app (optional: only through guarded imports). */
  imported: ReadonlyMap<string, boolean>;
  /** Declared by pyproject.toml / requirements (optional: guarded by a marker). */
  declared: ReadonlyMap<string, boolean>;
  /** Named by an include. */
  included: ReadonlySet<string>;
  /** Loaded by a traced run. */
  traced: ReadonlySet<string>;
}

/**
 * The manifest's packages, sorted by id. A package is `included`, `declared` or `traced` only
 * when nothing found before it (imports, then includes, then declarations) reaches it; what only they reach is `dependency`.
 */
export function packageClosure(
  env: CondaPrefix,
  roots: PackageRoots,
): PackageEntry[] {
  const { packages, python } = env;
  const closure = (start: Iterable<string>): Set<string> => {
    const seen = new Set<string>();
    const pending = [...start];
    while (pending.length > 0) {
      const id = pending.pop() as string;
      if (seen.has(id) || !packages.has(id)) continue;
      seen.add(id);
      pending.push(...(packages.get(id)?.dependencies ?? []));
    }
    return seen;
  };
  const requiredRoots = (map: ReadonlyMap<string, boolean>) =>
    [...map].filter(([, optional]) => !optional).map(([id]) => id);
  const required = closure([
    python.id,
    ...requiredRoots(roots.imported),
    ...requiredRoots(roots.declared),
    ...roots.included,
    ...roots.traced,
  ]);
  const reasons = new Map<string, PackageEntry["reason"]>();
  const reached = closure([python.id, ...roots.imported.keys()]);
  for (const [extra, reason] of [
    [[...roots.included], "included"],
    [[...roots.declared.keys()], "declared"],
    [[...roots.traced], "traced"],
  ] as const) {
    const fresh = extra.filter((id) => packages.has(id) && !reached.has(id));
    for (const id of fresh) reasons.set(id, reason);
    for (const id of closure(fresh)) reached.add(id);
  }
  return [...reached].sort(compare).map((id) => {
    const pkg = packages.get(id) as NonNullable<
      ReturnType<typeof packages.get>
    >;
    const reason: PackageEntry["reason"] =
      id === python.id
        ? "interpreter"
        : roots.imported.has(id)
          ? "import"
          : (reasons.get(id) ?? "dependency");
    return {
      ...pkg,
      dependencies: [...pkg.dependencies],
      reason,
      ...(required.has(id) ? {} : { optional: true }),
    };
  });
}
