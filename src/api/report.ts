// `envpack report`: a run log → aggregated figures and one self-contained HTML page.

import { writeFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { writeAtomic, writeFailure, type OnEvent } from "../core/light.js";
import type { RunFigures } from "./run-report.js";

export type { RunFigures } from "./run-report.js";

/** Options of {@link report}. */
export interface ReportOptions {
  /** The run log an executor wrote (`log:` or `$ENVPACK_RUN_LOG`). */
  log: string;
  /**
   * Where the HTML page goes (written atomically); default the log's path with `.html`.
   * null writes no page (figures only).
   */
  output?: string | null | undefined;
  /** Warnings (a log cut mid-line, lines that are not events) as `warn` events. */
  onEvent?: OnEvent | undefined;
}

/** What {@link report} made. */
export interface ReportResult {
  figures: RunFigures;
  /** The HTML page written, and its size in bytes. */
  html?: { path: string; bytes: number } | undefined;
}

/**
 * Reads a run log and writes its report: a page with Chart.js inlined (no network needed to view
 * it) and the aggregated figures. A log cut in the middle of a line is reported up to that line,
 * with an `ENVPACK_WARN_RUN_LOG_TRUNCATED` warning.
 * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND (no log), ENVPACK_INPUT_RUN_LOG_INVALID (not a
 *   run log), ENVPACK_INPUT_OUTPUT_UNWRITABLE / ENVPACK_INPUT_NO_SPACE (the page's destination)
 */
export async function report(options: ReportOptions): Promise<ReportResult> {
  // The log reader and the page (~45 KB of code) load here, not with the api barrel that a
  // build or a scan loads too.
  const [{ loadRunData, runFigures }, { reportHtml }] = await Promise.all([
    import("./run-report.js"),
    import("./report-html.js"),
  ]);
  const log = resolve(options.log);
  const data = await loadRunData(log);
  for (const warning of data.warnings) options.onEvent?.(warning);
  const figures = runFigures(data);
  if (options.output === null) return { figures };
  const path = resolve(options.output ?? defaultOutput(log));
  const html = reportHtml(data, figures);
  try {
    await writeAtomic(path, (temp) => writeFile(temp, html));
  } catch (error) {
    throw writeFailure(error, path, "report");
  }
  return { figures, html: { path, bytes: Buffer.byteLength(html) } };
}

/** `run.jsonl` → `run.html`, beside it. */
function defaultOutput(log: string): string {
  const ext = extname(log);
  return `${ext === "" ? log : log.slice(0, -ext.length)}.html`;
}
