// Option parsers shared by commands: values are checked at parse time, errors exit 2.

import { InvalidArgumentError } from "commander";

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
