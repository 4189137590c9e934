// Plain-text tables and the `--json` switch shared by the benchmark scripts.

/** One printed row: its cells as text. */
export type Row = string[];

/** Formats rows as a left-aligned table with a header rule, ready for stdout. */
export function formatTable(header: Row, rows: Row[]): string {
  const widths = header.map((cell, i) =>
    Math.max(cell.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (row: Row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [
    line(header),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
  ].join("\n");
}

/** The header of a table of figures, each against its peer and held to a target. */
export const FIGURE_HEADER: Row = [
  "fixture",
  "figure",
  "envpack",
  "peer",
  "ratio",
  "target",
  "met",
];

/** Whether a figure met its target, as its table prints it. */
export function metText(met: boolean): string {
  return met ? "yes" : "NO";
}

/** Seconds with three decimals. */
export function secs(seconds: number): string {
  return `${seconds.toFixed(3)} s`;
}

/** A ratio with two decimals and, when given, the target it is held to. */
export function ratioText(value: number | null, target?: string): string {
  const text = value === null ? "n/a" : value.toFixed(2);
  return target === undefined ? text : `${text} (target ${target})`;
}

/** Bytes as MB (10^6) with two decimals. */
export function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

/** True when the script was asked for JSON output. */
export function wantsJson(argv: string[]): boolean {
  return argv.includes("--json");
}
