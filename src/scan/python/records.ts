// A Python scan's import records and unresolved findings: made root-relative, deduplicated, sorted.

import {
  compare,
  type ImportRecord,
  type UnresolvedEntry,
} from "../../core/index.js";

/** What an import resolved to, before paths are made relative. */
export type Target =
  | { type: "builtin" }
  | { type: "package"; id: string }
  | { type: "file"; path: string }
  | { type: "unresolved" };

/** An import as the scan found it (absolute paths). */
export interface PendingImport {
  specifier: string;
  file: string;
  line: number;
  kind: ImportRecord["kind"];
  target: Target;
  optional: boolean;
}

/** A finding on an absolute file. */
export type PendingUnresolved = Omit<UnresolvedEntry, "file"> & {
  file: string;
};

/** The import records, one per file, line, specifier and kind, sorted. */
export function importRecords(
  imports: PendingImport[],
  rel: (path: string) => string,
): ImportRecord[] {
  const unique = new Map<string, ImportRecord>();
  for (const imp of imports) {
    const resolved =
      imp.target.type === "builtin"
        ? "builtin"
        : imp.target.type === "package"
          ? `package:${imp.target.id}`
          : imp.target.type === "file"
            ? `file:${rel(imp.target.path)}`
            : "unresolved";
    const record: ImportRecord = {
      specifier: imp.specifier,
      file: rel(imp.file),
      line: imp.line,
      kind: imp.kind,
      resolved,
      ...(imp.optional ? { optional: true } : {}),
    };
    unique.set(
      `${record.file}\0${record.line}\0${record.specifier}\0${record.kind}`,
      record,
    );
  }
  return [...unique.values()].sort(
    (a, b) =>
      compare(a.file, b.file) ||
      a.line - b.line ||
      compare(a.specifier, b.specifier) ||
      compare(a.kind, b.kind),
  );
}

/** The findings, one per file, line, column and specifier, sorted. */
export function unresolvedEntries(
  unresolved: PendingUnresolved[],
  rel: (path: string) => string,
): UnresolvedEntry[] {
  const unique = new Map<string, UnresolvedEntry>();
  for (const u of unresolved) {
    const entry = { ...u, file: rel(u.file) };
    unique.set(
      `${entry.file}\0${entry.line}\0${entry.column ?? 0}\0${entry.specifier}`,
      entry,
    );
  }
  return [...unique.values()].sort(
    (a, b) =>
      compare(a.file, b.file) ||
      a.line - b.line ||
      (a.column ?? 0) - (b.column ?? 0) ||
      compare(a.specifier, b.specifier),
  );
}
