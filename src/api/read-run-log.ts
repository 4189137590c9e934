// Reads a run log line by line: each complete line is one JSON record; a last line cut off by a
// killed writer, or a line that is not JSON, is a coded warning and the rest is still read.

import { createReadStream } from "node:fs";
import { InputError, isNotFound, type WarnEvent } from "../core/light.js";

/** One record of a run log: an event (or run:start / run:end) with its time `t` in ms. */
export interface LogRecord {
  t: number;
  type: string;
  [key: string]: unknown;
}

/**
 * Calls `take` with every record of the log at `path`, in order, and returns the warnings: a
 * last line without its newline that does not parse (`ENVPACK_WARN_RUN_LOG_TRUNCATED`), a line
 * that is not a JSON record (`ENVPACK_WARN_RUN_LOG_BAD_LINE`, the first of them named, all counted).
 * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND (no such file), ENVPACK_INPUT_RUN_LOG_INVALID
 *   (not a run log: its first line is not a run:start record)
 */
export async function readRunLog(
  path: string,
  take: (record: LogRecord) => void,
): Promise<WarnEvent[]> {
  const warnings: WarnEvent[] = [];
  let rest: Buffer = Buffer.alloc(0);
  let lineNo = 0;
  let bad = 0;
  let firstBad = 0;
  const handle = (line: string, last: boolean): void => {
    lineNo++;
    if (line === "") return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      // Not JSON: a cut last line or a damaged one, counted below, never fatal.
      if (!(error instanceof SyntaxError)) throw error;
    }
    if (!isRecord(record)) {
      if (lineNo === 1 && !last) notRunLog(path);
      if (last) {
        warnings.push({
          type: "warn",
          code: "ENVPACK_WARN_RUN_LOG_TRUNCATED",
          message: `the run log ${path} ends in the middle of line ${lineNo} (its writer was stopped); the report covers the ${lineNo - 1} lines before it`,
          data: { path, line: lineNo, bytes: line.length },
        });
        return;
      }
      if (bad++ === 0) firstBad = lineNo;
      return;
    }
    if (lineNo === 1 && record.type !== "run:start") notRunLog(path);
    take(record);
  };
  try {
    // Bytes, split at newlines, each line decoded alone: no decoder state, no big string.
    const stream = createReadStream(path, { highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      let end = chunk.indexOf(10);
      if (rest.length > 0) {
        // Only the line that spans two chunks is copied, not the whole chunk.
        if (end === -1) {
          rest = Buffer.concat([rest, chunk]);
          continue;
        }
        handle(Buffer.concat([rest, chunk.subarray(0, end)]).toString(), false);
        start = end + 1;
        end = chunk.indexOf(10, start);
      }
      for (; end !== -1; end = chunk.indexOf(10, start)) {
        handle(chunk.toString("utf8", start, end), false);
        start = end + 1;
      }
      rest = chunk.subarray(start);
    }
  } catch (error) {
    if (isNotFound(error))
      throw new InputError(
        "ENVPACK_INPUT_ENTRY_NOT_FOUND",
        `no run log at ${path}`,
        {
          hint: "Give the file an executor wrote with log: FILE (or $ENVPACK_RUN_LOG).",
          details: { path },
          cause: error,
        },
      );
    throw error;
  }
  if (rest.length > 0) handle(rest.toString("utf8"), true);
  if (lineNo === 0 || (lineNo === 1 && rest.length > 0 && warnings.length > 0))
    notRunLog(path);
  if (bad > 0)
    warnings.push({
      type: "warn",
      code: "ENVPACK_WARN_RUN_LOG_BAD_LINE",
      message: `${bad} line${bad === 1 ? "" : "s"} of the run log ${path} ${bad === 1 ? "is" : "are"} not a JSON event (first: line ${firstBad}); skipped`,
      data: { path, lines: bad, first: firstBad },
    });
  return warnings;
}

function isRecord(value: unknown): value is LogRecord {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as LogRecord).type === "string" &&
    typeof (value as LogRecord).t === "number"
  );
}

function notRunLog(path: string): never {
  throw new InputError(
    "ENVPACK_INPUT_RUN_LOG_INVALID",
    `${path} is not an envpack run log (its first line is not a run:start record)`,
    {
      hint: "Give the file an executor wrote with log: FILE (or $ENVPACK_RUN_LOG).",
      details: { path },
    },
  );
}
