// `envpack report`: a run log → one self-contained HTML page and the run's figures.

import type { Command } from "commander";
import type { CommandContext } from "../context.js";

interface ReportFlags {
  output?: string;
}

/** Registers `envpack report`. */
export function registerReport(
  program: Command,
  context: CommandContext,
): void {
  program
    .command("report")
    .description(
      "turn an executor's run log into an HTML report (timeline, usage, labels, bundles, tasks)",
    )
    .argument("<log>", "the run log (Executor({ log }) or $ENVPACK_RUN_LOG)")
    .option(
      "-o, --output <file>",
      "the HTML page (default: the log's name with .html; with --json, none unless given)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  envpack report run.jsonl -o report.html\n  envpack report run.jsonl --json",
    )
    .action(async (log: string, flags: ReportFlags) => {
      await context.run(async ({ onEvent, mode }) => {
        const { report } = await import("../../api/light.js");
        const result = await report({
          log,
          output: flags.output ?? (mode.json ? null : undefined),
          onEvent,
        });
        const f = result.figures;
        const t = f.tasks;
        return {
          json: {
            ...f,
            ...(result.html === undefined ? {} : { html: result.html.path }),
          },
          human: [
            `${t.total} tasks: ${t.done} done, ${t.failed} failed, ${t.canceled} canceled, ${t.unfinished} unfinished; ${t.attempts} attempts, ${t.retries} ran again; ${f.workers.length} workers; ${f.durationS} s`,
            ...f.apps.map(
              (a) =>
                `${a.app}: ${a.tasks} tasks, ${a.failed} failed, wall median ${a.wallS.median ?? "-"} s, p95 ${a.wallS.p95 ?? "-"} s`,
            ),
            ...(result.html === undefined
              ? []
              : [`report written to ${result.html.path}`]),
          ].join("\n"),
        };
      });
    });
}
