// The error model: one coded error class per failure kind; the class fixes the exit code.

import type { TaskResult } from "./task.js";

/** Every error code envpack can throw. `ENVPACK_<AREA>_<WHAT>`; each is listed in the README. */
export type ErrorCode =
  | "ENVPACK_USAGE_BAD_ARGUMENT"
  | "ENVPACK_USAGE_BAD_CONFIG"
  | "ENVPACK_USAGE_MIXED_ENTRIES"
  | "ENVPACK_USAGE_BAD_REGISTRY_URL"
  | "ENVPACK_USAGE_BAD_RESOURCES"
  | "ENVPACK_INPUT_ENTRY_NOT_FOUND"
  | "ENVPACK_INPUT_ENTRY_UNSUPPORTED"
  | "ENVPACK_INPUT_ENV_NOT_FOUND"
  | "ENVPACK_INPUT_ENV_NOT_CONDA"
  | "ENVPACK_INPUT_ENV_NO_PYTHON"
  | "ENVPACK_INPUT_ENV_CORRUPT"
  | "ENVPACK_INPUT_ENV_EDITABLE"
  | "ENVPACK_INPUT_ENV_MISSING_FILES"
  | "ENVPACK_INPUT_UNRESOLVED"
  | "ENVPACK_INPUT_SYNTAX_ERROR"
  | "ENVPACK_INPUT_TARGET_VARIANT_MISSING"
  | "ENVPACK_INPUT_MANIFEST_INVALID"
  | "ENVPACK_INPUT_OUTPUT_UNWRITABLE"
  | "ENVPACK_INPUT_NO_SPACE"
  | "ENVPACK_INPUT_CACHE_LOCKED"
  | "ENVPACK_INPUT_TRACE_FAILED"
  | "ENVPACK_INPUT_INCLUDE_MISSING"
  | "ENVPACK_INPUT_RUN_LOG_INVALID"
  | "ENVPACK_INTEGRITY_DIGEST_MISMATCH"
  | "ENVPACK_INTEGRITY_UNSAFE_ENTRY"
  | "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE"
  | "ENVPACK_REMOTE_HTTP"
  | "ENVPACK_REMOTE_AUTH"
  | "ENVPACK_REMOTE_UNREACHABLE"
  | "ENVPACK_TASK_FAILED"
  | "ENVPACK_TASK_TOO_LARGE"
  | "ENVPACK_TASK_OVER_RESOURCES"
  | "ENVPACK_TASK_CANCELED"
  | "ENVPACK_TOOL_MISSING"
  | "ENVPACK_TOOL_FAILED";

/** Fields every envpack error carries besides its message. */
export interface EnvpackErrorOptions {
  /** The next step for the user, imperative. */
  hint?: string;
  /** JSON-safe data about the failure (paths, digests, findings). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** Base class of every expected failure; `exitCode` is fixed by the subclass. */
export abstract class EnvpackError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  abstract readonly exitCode: number;

  constructor(
    code: ErrorCode,
    message: string,
    options: EnvpackErrorOptions = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** The JSON form printed by `--json` on failure. */
  toJSON(): {
    code: ErrorCode;
    message: string;
    hint?: string;
    details?: Record<string, unknown>;
  } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/** Bad flags, arguments or config values. Exit 2. */
export class UsageError extends EnvpackError {
  override readonly name = "UsageError";
  readonly exitCode = 2;
}

/** The user's files are wrong: missing entry, unreadable manifest, unresolved imports under strict. Exit 2. */
export class InputError extends EnvpackError {
  override readonly name = "InputError";
  readonly exitCode = 2;
}

/** Digest mismatch, truncated/corrupt or unsafe archive. Exit 1. */
export class IntegrityError extends EnvpackError {
  override readonly name = "IntegrityError";
  readonly exitCode = 1;
}

/**
 * A registry (or, later, a worker connection) failed: an unexpected HTTP status, refused
 * credentials, or no answer after the retries. `url` never carries credentials. Exit 1.
 */
export class RemoteError extends EnvpackError {
  override readonly name = "RemoteError";
  readonly exitCode = 1;
  /** The address that failed, credentials and query removed. */
  readonly url: string;
  /** The HTTP status, when there was an answer. */
  readonly status: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: EnvpackErrorOptions & { url: string; status?: number | undefined },
  ) {
    super(code, message, {
      ...options,
      details: { ...options.details, url: options.url, status: options.status },
    });
    this.url = options.url;
    this.status = options.status;
  }
}

/**
 * A task failed for good (after its retries): the app threw, its process died, it ran over its
 * resources, or it was canceled. `result` is its last run's {@link TaskResult}. Exit 1.
 */
export class TaskError extends EnvpackError {
  override readonly name = "TaskError";
  readonly exitCode = 1;
  readonly result: TaskResult | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: EnvpackErrorOptions & { result?: TaskResult | undefined },
  ) {
    super(code, message, options);
    this.result = options.result;
    // The remote stack, when the app threw: where the failure really happened.
    if (options.result?.error?.stack !== undefined)
      this.stack = `${this.name}: ${message}\n--- remote ---\n${options.result.error.stack}`;
  }
}

/** An external tool (zstd, conda-pack, work_queue_worker) is missing or failed. Exit 1. */
export class ToolError extends EnvpackError {
  override readonly name = "ToolError";
  readonly exitCode = 1;
}

/** True for errors envpack raised on purpose (as opposed to bugs). */
export function isEnvpackError(error: unknown): error is EnvpackError {
  return error instanceof EnvpackError;
}
