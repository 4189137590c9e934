// Typed progress and diagnostic events emitted by long operations; the CLI decides how to render them.

import type { Digest } from "./digest.js";
import type { Resources } from "./resources.js";
import type { CategorySummary, TaskResult } from "./task.js";

/** A finding that is data, not a failure; `strict` turns some of them into errors. */
export interface WarnEvent {
  type: "warn";
  code: string;
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
      workerId?: string;
      label?: Resources;
      result?: TaskResult;
    }
  /** autolabel chose a new label for a category. */
  | ({ type: "label:chosen" } & CategorySummary)
  | WarnEvent
  | { type: "debug"; message: string };

/** The callback long operations accept. It must not throw. */
export type OnEvent = (event: EnvpackEvent) => void;
