// What every command handler gets: output mode, progress callback, cancellation, and one way to finish.

import type { OnEvent } from "../core/light.js";
import type { OutputMode } from "./render/output.js";

/** Passed to a command's body. */
export interface RunScope {
  mode: OutputMode;
  onEvent: OnEvent;
  signal: AbortSignal;
  /** The cache directory from `--cache-dir`, `$ENVPACK_CACHE_DIR` or the XDG default. */
  cacheDir: string;
  /** Sets the exit code of a command that succeeded as far as envpack is concerned (`run`). */
  setExitCode: (code: number) => void;
}

/** A command body returns its result as JSON data and as human text. */
export interface CommandResult {
  json: Record<string, unknown>;
  human: string;
}

/** Shared by all commands: runs a body with rendering and error handling. */
export interface CommandContext {
  run(body: (scope: RunScope) => Promise<CommandResult>): Promise<void>;
}
