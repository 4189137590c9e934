// The host side of pack-worker.mjs's packer: in a worker thread (a big bundle packs beside the
// caller's work), or on the calling thread (a small bundle, where booting a worker costs more
// than packing). Both run the same packer, so both give the same bytes.

import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import {
  InputError,
  envpackCodeFile,
  type Digest,
  type OnEvent,
} from "../src/core/light.js";
import type { BundleEntry } from "./bundle-entry.js";

/** What the packer is given (pack-worker.mjs's JSDoc `Start` and `Batch`). */
export type PackJob =
  | {
      type: "start";
      temp: string;
      level: number;
      threads: number;
      mtimeMs: number;
      /** The native addon the .pyc source hash may use (nativeStatFile), or null. */
      nativeAddon: string | null;
    }
  | { type: "entries"; entries: BundleEntry[]; last: boolean };

/** A packing failure as pack-worker.mjs reports it (its JSDoc `ErrorReport`). */
interface ErrorReport {
  changed: boolean;
  name: string;
  message: string;
  stack?: string | undefined;
  code?: string | undefined;
  errno?: number | undefined;
  syscall?: string | undefined;
  path?: string | undefined;
}

/** What the packing worker posts, each about the bundle of its id. */
type PackMessage = { id: number } & (
  | { type: "progress"; bytes: number; total: number; files: number }
  | { type: "done"; digest: Digest; size: number }
  | { type: "error"; error: ErrorReport }
  | { type: "dropped" }
);

/** What a host needs of the writer's options. */
export interface PackHostOptions {
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * A packer being fed: `post` hands it a job; `done` settles once the last batch is packed (or
 * the packer failed, whenever that was), progress is relayed meanwhile; `stop` ends it if it is
 * still running and resolves once it is gone, so the temp file is closed before it is removed.
 */
export interface PackHost {
  post(job: PackJob): void;
  fail(error: unknown): void;
  done: Promise<{ digest: Digest; size: number }>;
  stop(): Promise<void>;
}

/**
 * One packing worker (see pack-worker.mjs) that several bundle writers share: their jobs run one
 * after another in the order posted, so bundles known together pack on one thread (and one set
 * of zstd threads) instead of each booting its own. Each writer's bytes are as if it were alone.
 */
export interface PackThread {
  /** A host for one more bundle on this thread. */
  host(options: PackHostOptions): PackHost;
  /** Terminates the worker once its hosts are stopped (at once if `now`, failing the rest). */
  close(now?: boolean): Promise<void>;
}

/**
 * Boots a packing worker at once. An abort of `signal` terminates it, failing every bundle on it
 * with the signal's reason; so does a crash of the worker, with its error.
 */
export function startPackThread(signal?: AbortSignal): PackThread {
  const worker = new Worker(envpackCodeFile("packer/pack-worker.mjs"));
  const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
  const listeners = new Map<number, (message: PackMessage) => void>();
  let crash: unknown;
  let nextId = 0;
  let live = 0;
  let closing = false;
  worker.on("error", (error) => (crash ??= error));
  worker.on("message", (message: PackMessage) =>
    listeners.get(message.id)?.(message),
  );
  const onAbort = (): void => void worker.terminate();
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  const exit = async (): Promise<void> => {
    signal?.removeEventListener("abort", onAbort);
    await worker.terminate();
    await exited;
  };
  return {
    host(options) {
      const id = nextId++;
      live++;
      let settled = false;
      let failure: unknown;
      let stopped: Promise<void> | undefined;
      let dropped!: () => void;
      const gone = new Promise<void>((resolve) => (dropped = resolve));
      const done = new Promise<{ digest: Digest; size: number }>(
        (resolve, reject) => {
          listeners.set(id, (message) => {
            if (message.type === "progress") relayProgress(options, message);
            else if (message.type === "dropped") {
              settled = true;
              reject(failure ?? new Error("the bundle writer was stopped"));
              dropped();
            } else {
              settled = true;
              if (message.type === "done")
                failure === undefined
                  ? resolve({ digest: message.digest, size: message.size })
                  : reject(failure);
              else reject((failure ??= packError(message.error)));
              dropped();
            }
          });
          void exited.then((code) => {
            reject(
              (options.signal ?? signal)?.aborted
                ? (options.signal ?? signal)?.reason
                : (failure ??
                    crash ??
                    new Error(`the packing worker exited with code ${code}`)),
            );
            dropped();
          });
        },
      );
      // Awaited only by finish; a writer that is aborted instead never looks at it.
      done.then(undefined, () => undefined);
      // The writer's own signal ends only its bundle; the thread's signal ends the thread.
      const onWriterAbort = (): void => {
        failure ??= options.signal?.reason;
        if (!settled) worker.postMessage({ type: "drop", id });
      };
      if (options.signal !== signal)
        options.signal?.addEventListener("abort", onWriterAbort, {
          once: true,
        });
      return {
        post: (job) => {
          // Nothing after a stop: a start arriving after its drop would open a temp no one removes.
          if (failure === undefined && stopped === undefined)
            worker.postMessage({ ...job, id });
        },
        fail: (error) => {
          failure ??= error;
          if (!settled) worker.postMessage({ type: "drop", id });
        },
        done,
        stop: () => {
          stopped ??= (async () => {
            options.signal?.removeEventListener("abort", onWriterAbort);
            if (!settled) worker.postMessage({ type: "drop", id });
            await gone;
            listeners.delete(id);
            live--;
            if (closing && live === 0) await exit();
          })();
          return stopped;
        },
      };
    },
    async close(now = false) {
      closing = true;
      if (now || live === 0) await exit();
    },
  };
}

/**
 * Boots a packing worker of its own for one bundle (see {@link startPackThread}); it ends when
 * the bundle's host is stopped.
 */
export function startPackWorker(options: PackHostOptions): PackHost {
  const thread = startPackThread(options.signal);
  const host = thread.host(options);
  void thread.close();
  return host;
}

/**
 * The zstd contexts of the bundles packed on this thread, kept for the next ones as a packing
 * worker keeps its own: a new multi-threaded context (its compression threads and job buffers)
 * costs more than packing a whole app layer, and one reset after its frame gives the same bytes.
 */
const inThreadContexts: NonNullable<
  Parameters<(typeof import("./pack-worker.mjs"))["createPacker"]>[2]
> = new Map();

/**
 * Packs on the calling thread: each job runs in turn, synchronously, once the packer module is
 * loaded (the thread is busy while a batch packs). The signal is checked between jobs.
 */
export function startPackInThread(options: PackHostOptions): PackHost {
  type Packer = ReturnType<
    (typeof import("./pack-worker.mjs"))["createPacker"]
  >;
  let packer: Packer | undefined;
  let settle!: {
    resolve: (done: { digest: Digest; size: number }) => void;
    reject: (error: unknown) => void;
  };
  const done = new Promise<{ digest: Digest; size: number }>(
    (resolve, reject) => (settle = { resolve, reject }),
  );
  done.then(undefined, () => undefined);
  let ended = false;
  const end = (error: unknown): void => {
    packer?.close();
    packer = undefined;
    if (!ended) settle.reject(error);
    ended = true;
  };
  // Loaded here, not at start-up: tar and zstd only once a bundle is packed.
  let queue: Promise<unknown> = import(
    pathToFileURL(envpackCodeFile("packer/pack-worker.mjs")).href
  ) as Promise<typeof import("./pack-worker.mjs")>;
  return {
    post(job) {
      queue = queue.then((module) => {
        if (ended) return module;
        const { createPacker, errorReport } =
          module as typeof import("./pack-worker.mjs");
        try {
          options.signal?.throwIfAborted();
          if (job.type === "start") {
            packer = createPacker(
              job,
              (progress) => relayProgress(options, progress),
              inThreadContexts,
            );
            return module;
          }
          if (packer === undefined) throw new Error("entries before start");
          packer.add(job.entries);
          if (job.last) {
            const result = packer.finish();
            packer.close();
            packer = undefined;
            ended = true;
            settle.resolve(result as { digest: Digest; size: number });
          }
        } catch (error) {
          end(
            options.signal?.aborted
              ? options.signal.reason
              : packError(errorReport(error)),
          );
        }
        return module;
      }, end);
    },
    fail: end,
    done,
    stop: async () => {
      await queue.then(undefined, () => undefined);
      end(new Error("the bundle writer was stopped"));
    },
  };
}

function relayProgress(
  options: PackHostOptions,
  { bytes, total, files }: { bytes: number; total: number; files: number },
): void {
  options.onEvent?.({
    type: "build:progress",
    phase: "pack",
    bytes,
    total,
    files,
  });
}

/** Turns the packer's error report back into the error writeBundle documents. */
function packError(report: ErrorReport): Error {
  if (report.changed) {
    return new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `${report.message} changed size while it was being packed`,
      {
        hint: "Build again once nothing is writing to the app or its packages.",
      },
    );
  }
  // File-system errors keep their code, syscall and path, as if thrown here.
  const error = Object.assign(new Error(report.message), {
    code: report.code,
    errno: report.errno,
    syscall: report.syscall,
    path: report.path,
  });
  error.name = report.name;
  if (report.stack !== undefined) error.stack = report.stack;
  return error;
}
