// The envpack command line: parses arguments, runs one command, renders its result, sets the exit code.

import { Command, CommanderError } from "commander";
import {
  UsageError,
  envpackPackageJson,
  markOneShotProcess,
} from "../core/light.js";
import { registerBuild } from "./commands/build.js";
import { registerCache } from "./commands/cache.js";
import { registerRegistry } from "./commands/registry.js";
import { registerReport } from "./commands/report.js";
import { registerRun } from "./commands/run.js";
import { registerScan } from "./commands/scan.js";
import type { CommandContext } from "./context.js";
import {
  outputMode,
  printError,
  printResult,
  progressRenderer,
  whenStdoutClosed,
  writeStdout,
} from "./render/output.js";

interface GlobalFlags {
  cacheDir?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/**
 * Commander's help and version go to stdout as results do; what it writes to stderr goes there
 * as it is; its errors are not printed by commander but become UsageErrors printed like every
 * other error (with `code:`, or as the --json document).
 */
const output = {
  writeOut: writeStdout,
  writeErr: (text: string) => process.stderr.write(text),
  outputError: () => {},
};

async function main(argv: string[]): Promise<number> {
  // One command, then exit: native parsers before JIT-compiled ones (see core/one-shot.ts).
  markOneShotProcess();
  let exitCode = 0;
  // The command whose arguments failed to parse, for the hint.
  let failed = "";
  const program = new Command("envpack")
    .description("make a workflow's environment travel with its tasks")
    .version(envpackPackageJson().version)
    .option(
      "--cache-dir <dir>",
      "bundle cache (default: $ENVPACK_CACHE_DIR or ~/.cache/envpack)",
    )
    .option("--json", "print one JSON document on stdout")
    .option("-q, --quiet", "print errors only")
    .option("-v, --verbose", "print debug lines")
    .exitOverride()
    .configureOutput(output);

  const context: CommandContext = {
    async run(body) {
      // Set up when a command runs: `--help` installs no signal handler.
      const controller = new AbortController();
      process.once("SIGINT", () => {
        controller.abort(new Error("interrupted"));
        exitCode = 130;
      });
      const mode = outputMode(program.opts<GlobalFlags>());
      const progress = progressRenderer(mode);
      try {
        const flags = program.opts<GlobalFlags>();
        // Loaded here, not at start-up: its barrel reaches the build and scan modules.
        const { loadConfig } = await import("../api/light.js");
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
  registerReport(program, context);
  const configure = (parent: Command, path: string): void => {
    for (const command of parent.commands) {
      const name = `${path}${command.name()}`;
      command
        .exitOverride((error) => {
          failed = name;
          throw error;
        })
        .configureOutput(output);
      configure(command, `${name} `);
    }
  };
  configure(program, "");

  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0; // --help, --version
      const help =
        failed === "" ? "envpack --help" : `envpack ${failed} --help`;
      return printError(
        outputMode(program.opts<GlobalFlags>()),
        new UsageError(
          "ENVPACK_USAGE_BAD_ARGUMENT",
          // Help shown for want of a command carries no message of its own.
          error.code === "commander.help"
            ? "no command given"
            : error.message.replace(/^error: /, ""),
          { hint: `Run \`${help}\` for usage.` },
        ),
      );
    }
    throw error;
  }
  return exitCode;
}

// A reader that goes away (`envpack build --help | head -1`) is not envpack's error: end as a tool
// killed by SIGPIPE would (128 + 13), without a stack trace. Results are printed after the work is
// done, so nothing is left half-written.
whenStdoutClosed(() => process.exit(141));

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = printError(outputMode({}), error);
  },
);
