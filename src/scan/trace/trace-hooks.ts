// Module-loader hooks of a traced app (registered by trace-register): every file URL a module
// resolves to is appended to the trace output. Node builtins only.

import { appendFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

let out: string | undefined;

/** Receives the trace output path from `register()`. */
export function initialize(data: { out: string }): void {
  out = data.out;
}

interface Resolved {
  url: string;
}

/** Records the file each specifier resolves to. */
export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<Resolved>,
): Promise<Resolved> {
  const result = await next(specifier, context);
  if (out !== undefined && result.url.startsWith("file:"))
    appendFileSync(out, fileURLToPath(result.url) + "\n");
  return result;
}
