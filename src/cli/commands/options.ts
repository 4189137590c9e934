// Option parsers shared by commands: values are checked at parse time, errors exit 2.

import { InvalidArgumentError, type Command } from "commander";

/**
 * Splits a command's operands at `--` (which commander drops): the entries before it, and the
 * command line after it (`envpack scan src/main.js --trace -- node src/main.js`).
 */
export function splitAtDashes(
  operands: string[],
  command: Command,
): { entries: string[]; command: string[] } {
  // commander keeps the whole argv on the program (untyped): the only place that still has `--`.
  const raw =
    (command.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? [];
  const at = raw.indexOf("--");
  const after = at < 0 ? 0 : raw.length - at - 1;
  return {
    entries: operands.slice(0, operands.length - after),
    command: operands.slice(operands.length - after),
  };
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses an integer option within [min, max]. */
export function intOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        `expected an integer from ${min} to ${max}`,
      );
    return n;
  };
}

/**
 * Adds the options that decide what a scan ships beyond the imports (`scan` and `build` take the
 * same ones, with the same help).
 */
export function withScanScope(command: Command): Command {
  return command
    .option(
      "--only-imported",
      "leave out declared dependencies no import reaches (the smallest bundle)",
    )
    .option(
      "--include <pkg|glob>",
      "ship this installed package or these app files too (repeatable)",
      collect,
    )
    .option(
      "--trace",
      "run the app once here (the command after --; default: node ENTRY, or the env's python ENTRY) and add what it loaded",
    );
}
