// Typed progress and diagnostic events emitted by long operations; the CLI decides how to render them.

import type { Digest } from "./digest.js";
import type { ResourceSpec, Resources } from "./resources.js";
import type { CategorySummary, TaskResult } from "./task.js";

/**
 * Every warning code envpack emits, `ENVPACK_WARN_<WHAT>`; each is listed in the README. A closed
 * set, as error codes are: scripts may match on them.
 */
export type WarningCode =
  /** A symlink in an npm package that links outside the package; left out of the bundle. */
  | "ENVPACK_WARN_LINK_SKIPPED"
  /** A directory the app names as an asset (templates, data) is over the size budget; not bundled. */
  | "ENVPACK_WARN_ASSET_BUDGET"
  /** A Conda package missing from the package cache: its files are read from the environment. */
  | "ENVPACK_WARN_CONDA_UNCACHED"
  /** A file of a Conda package that differs from the package's own copy; the prefix's is packed. */
  | "ENVPACK_WARN_CONDA_MODIFIED_FILE"
  /** A file holding the prefix in a form relocation cannot rewrite; packed unchanged. */
  | "ENVPACK_WARN_CONDA_UNRELOCATABLE"
  /** A symlink in the environment pointing outside it; left out. */
  | "ENVPACK_WARN_CONDA_LINK_OUTSIDE"
  /** A socket, FIFO or device in the environment; left out. */
  | "ENVPACK_WARN_CONDA_SPECIAL_FILE"
  /** A package named to `--prune` that is not installed in the environment. */
  | "ENVPACK_WARN_PRUNE_UNKNOWN"
  /** A build whose bundle could not be published; the build still succeeded. */
  | "ENVPACK_WARN_REGISTRY_PUSH"
  /** A cached bundle did not match its digest (or recorded size); it was dropped and is rebuilt. */
  | "ENVPACK_WARN_CACHE_DAMAGED"
  /** The cache holds the app's bundle in an older bundle format; it is built again in this one. */
  | "ENVPACK_WARN_CACHE_OLD_FORMAT"
  /** A registry request failed in a way another attempt may mend; envpack tries again. */
  | "ENVPACK_WARN_REGISTRY_RETRY"
  /** An unpack waits for another process's lock on the same bundle (the holder's pid in `data`). */
  | "ENVPACK_WARN_UNPACK_LOCK_WAIT"
  /** The Work Queue catalog update could not be sent; workers started with `-M` will not find the manager. */
  | "ENVPACK_WARN_WQ_CATALOG"
  /** A Work Queue worker was refused: a password missing, wrong, or refused by the worker. */
  | "ENVPACK_WARN_WQ_AUTH"
  /** A Work Queue worker speaking another protocol version was refused. */
  | "ENVPACK_WARN_WQ_PROTOCOL"
  /** A Work Queue foreman connected; foremen are not supported. */
  | "ENVPACK_WARN_WQ_FOREMAN"
  /** A client that is neither a worker nor a request the manager answers was disconnected. */
  | "ENVPACK_WARN_WQ_PEER"
  /** Tasks on a Work Queue worker run without resource_monitor: memory and disk labels are not enforced. */
  | "ENVPACK_WARN_WQ_UNMONITORED"
  /** A Work Queue worker that answered no keepalive check was dropped; its tasks run elsewhere. */
  | "ENVPACK_WARN_WQ_WORKER_SILENT"
  /** A run log ends in the middle of a line (its writer was killed); the report has everything before it. */
  | "ENVPACK_WARN_RUN_LOG_TRUNCATED"
  /** A line of a run log that is not one JSON event; the report skips it. */
  | "ENVPACK_WARN_RUN_LOG_BAD_LINE";

/** A finding that is data, not a failure; `strict` turns some of them into errors. */
export interface WarnEvent {
  type: "warn";
  code: WarningCode;
  message: string;
  data?: Record<string, unknown>;
}

/** One event of a long operation. */
export type EnvpackEvent =
  | { type: "scan:file"; file: string; count: number }
  | {
      type: "scan:done";
      files: number;
      packages: number;
      unresolved: number;
      durationMs: number;
    }
  /**
   * Bytes of the bundle being written (uncompressed input) or unpacked (compressed input).
   * `total` is 0 (unknown) while packing and the bytes packed on the last pack event; `files`
   * counts files packed, or entries unpacked.
   */
  | {
      type: "build:progress";
      phase: "pack" | "unpack";
      bytes: number;
      total: number;
      files: number;
    }
  /** Bytes of a bundle sent to or received from a registry. */
  | {
      type: "registry:transfer";
      direction: "push" | "pull";
      digest: Digest;
      bytes: number;
      total: number;
    }
  /** A task changed state; `result` on done/failed carries its measurements. */
  | {
      type: "task:state";
      id: string;
      category: string;
      state: "queued" | "running" | "done" | "failed" | "retry";
      /** The app's name (on `queued`). */
      app?: string;
      workerId?: string;
      label?: Resources;
      result?: TaskResult;
    }
  /** autolabel chose a new label for a category. */
  | ({ type: "label:chosen" } & CategorySummary)
  /** A worker joined the pool (local workers at start, Work Queue workers when they connect). */
  | { type: "worker:joined"; workerId: string; resources: Resources }
  /** A worker left the pool; its running tasks run again elsewhere. */
  | { type: "worker:left"; workerId: string }
  /** An app was defined on an executor: its calls are tasks of its category. */
  | {
      type: "app:defined";
      app: string;
      kind: "module" | "command" | "python";
      /** Its default resources (empty: a whole worker, or its label under autolabel). */
      resources: ResourceSpec;
    }
  /**
   * One step of bringing a bundle to a worker, timed: `build` on this host (a cache hit is fast),
   * `transfer` to a worker (Work Queue: once per connection), `unpack` on a worker (local: once
   * per worker). `bytes` is the bundle's size.
   */
  | {
      type: "bundle:step";
      step: "build" | "transfer" | "unpack";
      digest: Digest;
      durationMs: number;
      bytes?: number | undefined;
      /** The worker it was sent to or unpacked on; none for a build. */
      workerId?: string | undefined;
      /** The app it was built for (build only). */
      app?: string | undefined;
      /** A build answered from the cache or a registry. */
      cached?: boolean | undefined;
    }
  | WarnEvent
  | { type: "debug"; message: string };

/** The callback long operations accept. It must not throw. */
export type OnEvent = (event: EnvpackEvent) => void;
