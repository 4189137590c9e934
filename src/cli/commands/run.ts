// `envpack run`: unpack a bundle once and run a command (or a Node bundle's app) inside it.

import type { Command } from "commander";
import type { CommandContext } from "../context.js";

/** Registers `envpack run`. */
export function registerRun(program: Command, context: CommandContext): void {
  program
    .command("run")
    .description(
      "run a command inside a bundle's environment (unpacked once per machine)",
    )
    .argument(
      "<bundle>",
      "a bundle file, or a sha256:… digest of a cached bundle",
    )
    .argument(
      "[command...]",
      "the command after --; without one a Node bundle runs its app",
    )
    .addHelpText(
      "after",
      "\nThe bundle's bin/ comes first on PATH and $ENVPACK_ENV names the environment.\n\nExample:\n  envpack run dist/3f…9a.tar.zst -- node --version\n  envpack run sha256:3f…9a",
    )
    .action(async (bundle: string, command: string[]) => {
      await context.run(async ({ onEvent, signal, cacheDir, setExitCode }) => {
        const { run } = await import("../../api/light.js");
        const result = await run({
          bundle,
          command,
          cacheDir,
          onEvent,
          signal,
        });
        setExitCode(result.exitCode);
        return { json: { ...result }, human: "" };
      });
    });
}
