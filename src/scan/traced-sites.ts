// Findings a traced run settles: computed import names at whose line the run imported modules.

import { compare, type UnresolvedEntry } from "../core/light.js";
import type { TracedImport } from "./scan-result.js";

/** The fields of a finding this reads and sets; `file` is absolute (a real path). */
type Finding = Pick<UnresolvedEntry, "line" | "reason" | "resolvedByTrace"> & {
  file: string;
};

/**
 * Each `dynamic-expression` finding at whose file and line the traced run imported modules,
 * marked `resolvedByTrace` with those modules (sorted); other findings as they are. A scanner
 * whose trace records calling lines (`TraceLog.imports`) passes them here.
 */
export function resolveByTrace<T extends Finding>(
  findings: T[],
  imports: readonly TracedImport[],
): T[] {
  const bySite = new Map<string, Set<string>>();
  for (const imp of imports) {
    const key = `${imp.file}\0${imp.line}`;
    let modules = bySite.get(key);
    if (modules === undefined) bySite.set(key, (modules = new Set()));
    modules.add(imp.module);
  }
  return findings.map((finding) => {
    const modules =
      finding.reason === "dynamic-expression"
        ? bySite.get(`${finding.file}\0${finding.line}`)
        : undefined;
    return modules === undefined
      ? finding
      : { ...finding, resolvedByTrace: [...modules].sort(compare) };
  });
}
