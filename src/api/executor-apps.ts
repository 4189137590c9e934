// How an app's call becomes a task: the app's file checked, TypeScript compiled for the host's
// node, command lines built, arguments checked to be JSON, declared workers checked.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import {
  InputError,
  UsageError,
  parseResourceSpec,
  writeFileAtomic,
  type TaskPayload,
} from "../core/light.js";
import type { WorkerSpec } from "../exec/index.js";

/** An app's file is checked when the app is made, not on every call. */
export function mustExist(file: string, what: string): void {
  if (!existsSync(file))
    throw new InputError(
      "ENVPACK_INPUT_ENTRY_NOT_FOUND",
      `${what}: ${file} does not exist`,
      { hint: "Give the path of the module (or .py file) that exports it." },
    );
}

/** Whether a module app's file needs compiling before the host's node can import it. */
export function isTypeScript(file: string): boolean {
  return [".ts", ".tsx", ".mts", ".cts"].includes(extname(file));
}

/**
 * Compiles a TypeScript module app (esbuild) into one ES module with the app's own files bundled,
 * written under the app's `node_modules/.cache/envpack/` so that its packages still resolve as they
 * did from the source (or under `fallbackDir` when it has no node_modules). Returns its path.
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT naming file:line when it does not compile
 */
export async function compileModuleApp(
  file: string,
  fallbackDir: string,
): Promise<string> {
  const modules = nearestNodeModules(dirname(file));
  const dir =
    modules === undefined ? fallbackDir : join(modules, ".cache", "envpack");
  const out = join(
    dir,
    `${basename(file, extname(file))}-${createHash("sha256").update(file).digest("hex").slice(0, 12)}.mjs`,
  );
  await mkdir(dir, { recursive: true });
  // Loaded here, for the first TypeScript app: importing envpack loads no compiler.
  const { build: esbuild } = await import("esbuild");
  const result = await esbuild({
    entryPoints: [file],
    bundle: true,
    packages: modules === undefined ? undefined : "external",
    platform: "node",
    format: "esm",
    target: "node20",
    write: false,
    logLevel: "silent",
    // CommonJS bundled into ESM still calls require() for builtins.
    banner: {
      js: 'import { createRequire as __envpackRequire } from "node:module"; const require = __envpackRequire(import.meta.url);',
    },
  }).catch((error: unknown) => {
    const first = (
      error as {
        errors?: Array<{
          text: string;
          location?: { file: string; line: number } | null;
        }>;
      }
    ).errors?.[0];
    const where =
      first?.location != null
        ? `${first.location.file}:${first.location.line}: `
        : "";
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `${file} does not compile: ${where}${first?.text ?? (error as Error).message.split("\n")[0]}`,
      { hint: "Fix the module, or give the compiled .js file." },
    );
  });
  // Compiled again on every call: not worth a flush to disk.
  await writeFileAtomic(out, result.outputFiles[0]?.contents ?? "", {
    fsync: false,
  });
  return out;
}

/** The closest `node_modules` directory at or above `dir`. */
function nearestNodeModules(dir: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    const candidate = join(at, "node_modules");
    if (existsSync(candidate)) return candidate;
    if (dirname(at) === at) return undefined;
  }
}

/**
 * A command app's payload: argv with the call's arguments appended, or a shell line that gets
 * them as `$1`…. Arguments are strings (numbers and booleans are written as JSON writes them).
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT for any other argument
 */
export function commandPayload(
  command: string[] | string,
  args: unknown[],
  name: string,
): TaskPayload {
  const words = args.map((arg) => {
    if (
      typeof arg === "string" ||
      typeof arg === "number" ||
      typeof arg === "boolean"
    )
      return String(arg);
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `${name}: command arguments are strings, got ${JSON.stringify(arg) ?? typeof arg}`,
    );
  });
  return Array.isArray(command)
    ? { kind: "command", argv: [...command, ...words] }
    : {
        kind: "command",
        shell:
          words.length === 0
            ? command
            : `set -- ${words.map(shellQuote).join(" ")}; ${command}`,
      };
}

/** A declared worker: `cores` required, the other resources as in a spec, an optional `id`. */
export function checkWorker(worker: WorkerSpec, index: number): void {
  const { id, ...resources } = worker;
  const spec = parseResourceSpec(resources, `workers[${index}]`);
  if (spec.cores === undefined || (id !== undefined && typeof id !== "string"))
    throw new UsageError(
      "ENVPACK_USAGE_BAD_RESOURCES",
      `workers[${index}]: a worker needs cores (and an id, if any, is a string)`,
      { hint: "e.g. workers: [{ cores: 4, memory: 8000 }, { cores: 2 }]" },
    );
}

/** Arguments travel as JSON: refuse what JSON would lose. */
export function checkJson(args: unknown[], name: string): void {
  const bad = (why: string) =>
    new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `${name}: arguments must be JSON values (${why})`,
      {
        hint: "Pass plain objects, arrays, strings, numbers, booleans or null.",
      },
    );
  const seen = new Set<unknown>();
  const walk = (value: unknown): void => {
    const type = typeof value;
    if (value === null || type === "string" || type === "boolean") return;
    if (type === "number") {
      if (!Number.isFinite(value))
        throw bad(`${String(value)} is not a JSON number`);
      return;
    }
    if (type !== "object") throw bad(`a ${type}`);
    if (seen.has(value)) throw bad("a cycle");
    seen.add(value);
    const proto = Object.getPrototypeOf(value);
    if (!Array.isArray(value) && proto !== Object.prototype && proto !== null)
      throw bad(`a ${(value as object).constructor?.name ?? "class"} instance`);
    for (const item of Object.values(value as object)) walk(item);
    seen.delete(value);
  };
  args.forEach(walk);
}

function shellQuote(value: unknown): string {
  return `'${String(value).replace(/'/g, "'\\''")}'`;
}
