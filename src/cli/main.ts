#!/usr/bin/env node
// The envpack command line: parses arguments, runs one command, renders its result, sets the exit code.

import { Command, CommanderError } from "commander";
import { UsageError } from "../core/index.js";
import { envpackVersion, loadConfig } from "../api/index.js";
import { registerBuild } from "./commands/build.js";
import { registerCache } from "./commands/cache.js";
import { registerRegistry } from "./commands/registry.js";
import { registerRun } from "./commands/run.js";
import { registerScan } from "./commands/scan.js";
import type { CommandContext } from "./context.js";
import {
  outputMode,
  printError,
  printResult,
  progressRenderer,
} from "./render/output.js";

interface GlobalFlags {
  cacheDir?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const controller = new AbortController();
  process.once("SIGINT", () => {
    controller.abort(new Error("interrupted"));
    exitCode = 130;
  });
  const program = new Command("envpack")
    .description("make a workflow's environment travel with its tasks")
    .version(envpackVersion())
    .option(
      "--cache-dir <dir>",
      "bundle cache (default: $ENVPACK_CACHE_DIR or ~/.cache/envpack)",
    )
    .option("--json", "print one JSON document on stdout")
    .option("-q, --quiet", "print errors only")
    .option("-v, --verbose", "print debug lines")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  const context: CommandContext = {
    async run(body) {
      const mode = outputMode(program.opts<GlobalFlags>());
      const progress = progressRenderer(mode);
      try {
        const flags = program.opts<GlobalFlags>();
        const result = await body({
          mode,
          onEvent: progress.onEvent,
          signal: controller.signal,
          cacheDir: loadConfig({ cacheDir: flags.cacheDir }).cacheDir,
          setExitCode: (code) => {
            exitCode = code;
          },
        });
        progress.done();
        printResult(mode, result.json, result.human);
      } catch (error) {
        progress.done();
        exitCode = controller.signal.aborted ? 130 : printError(mode, error);
      }
    },
  };
  registerScan(program, context);
  registerBuild(program, context);
  registerRun(program, context);
  registerCache(program, context);
  registerRegistry(program, context);
  program.commands.forEach((command) =>
    command
      .exitOverride()
      .configureOutput({ writeErr: (text) => process.stderr.write(text) }),
  );

  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0; // --help, --version
      const mode = outputMode(program.opts<GlobalFlags>());
      if (mode.json)
        printError(
          mode,
          new UsageError(
            "ENVPACK_USAGE_BAD_ARGUMENT",
            error.message.replace(/^error: /, ""),
          ),
        );
      return 2;
    }
    throw error;
  }
  return exitCode;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = printError(outputMode({}), error);
  },
);
