// Loaded into a traced app with `--import`: records every module it loads and every file it opens,
// one path a line, appended to $ENVPACK_TRACE_OUT. Node builtins only; it runs inside the app.

import { appendFileSync } from "node:fs";
import { createRequire, register, syncBuiltinESMExports } from "node:module";
import { fileURLToPath } from "node:url";

const out = process.env["ENVPACK_TRACE_OUT"];
// The module object CommonJS and the app share (an ES namespace cannot be patched).
const fs = createRequire(import.meta.url)(
  "node:fs",
) as typeof import("node:fs");

/** Appends one path (synchronous: the app may exit at any moment). */
function record(path: unknown): void {
  if (out === undefined) return;
  let file: string | undefined;
  if (typeof path === "string") file = path;
  else if (path instanceof URL && path.protocol === "file:")
    file = fileURLToPath(path);
  if (file === undefined || file === out) return;
  appendFileSync(out, file + "\n");
}

/** Wraps `object[name]` so that its first argument is recorded before the call. */
function wrap(object: object, name: string): void {
  const target = object as Record<string, unknown>;
  const original = target[name];
  if (typeof original !== "function") return;
  target[name] = function (this: unknown, ...args: unknown[]) {
    record(args[0]);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
}

if (out !== undefined) {
  // CommonJS reads module sources through fs.readFileSync; apps read their files through these.
  for (const name of [
    "readFileSync",
    "readFile",
    "openSync",
    "open",
    "createReadStream",
    "readdirSync",
    "readdir",
  ])
    wrap(fs, name);
  for (const name of ["readFile", "open", "readdir"]) wrap(fs.promises, name);
  // ES modules importing named fs functions get the wrapped ones too.
  syncBuiltinESMExports();
  const dlopen = process.dlopen;
  process.dlopen = function (
    module: { exports: unknown },
    filename: string,
    ...rest: unknown[]
  ) {
    record(filename);
    return (dlopen as (...a: unknown[]) => unknown).call(
      process,
      module,
      filename,
      ...rest,
    ) as void;
  } as typeof process.dlopen;
  // ES modules are loaded off the app's fs: a resolve hook sees each one.
  register(new URL("./trace-hooks.js", import.meta.url), {
    data: { out },
  });
}
