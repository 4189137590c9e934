// The files the manager sends to workers, each under a content-addressed cache name and read from
// this host once: the runners, envpack-run, bundles, resource_monitor.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { TaskBundle, TaskSpec } from "../../core/index.js";
import { runtimeFile } from "../runtime-file.js";
import { bundleFiles, type BundleFiles } from "./bundle-files.js";
import type { ShippedFile, TaskFiles } from "./task-command.js";

/** Shipped files by path (or bundle digest), and small files' bytes, shared by every worker. */
export class ShippedFiles {
  readonly #shipped = new Map<string, Promise<ShippedFile>>();
  readonly #read = new Map<string, Promise<Buffer>>();
  readonly #bundles = new Map<string, Promise<BundleFiles>>();

  /**
   * The files a task needs: its runner; with a bundle, envpack-run and the bundle (a layered
   * bundle's index with its layers).
   */
  async forTask(task: TaskSpec): Promise<TaskFiles> {
    const kind = task.payload.kind;
    if (kind === "command") return {};
    const runner = await this.ship(
      runtimeFile(kind === "module" ? "module-runner.mjs" : "python-runner.py"),
      kind === "module" ? "module-runner" : "python-runner",
      0o644,
      kind === "module" ? ".mjs" : ".py",
    );
    if (task.bundle === undefined) return { runner };
    const [envpackRun, bundle] = await Promise.all([
      this.ship(runtimeFile("envpack-run"), "envpack-run", 0o755),
      this.#bundle(task.bundle),
    ]);
    return { runner, envpackRun, ...bundle };
  }

  /** A file under a content-addressed cache name (`PREFIX-<sha256 prefix>EXT`), read once. */
  ship(
    path: string,
    prefix: string,
    mode: number,
    ext = "",
  ): Promise<ShippedFile> {
    let pending = this.#shipped.get(path);
    if (pending === undefined) {
      pending = this.read(path).then((data) => ({
        cacheName: `${prefix}-${createHash("sha256").update(data).digest("hex").slice(0, 32)}${ext}`,
        path,
        size: data.length,
        mode,
      }));
      this.#shipped.set(path, pending);
      pending.catch(() => this.#shipped.delete(path));
    }
    return pending;
  }

  /** A bundle's cached files (bundle-files.ts), looked at once per bundle. */
  #bundle(bundle: TaskBundle): Promise<BundleFiles> {
    let pending = this.#bundles.get(bundle.digest);
    if (pending === undefined) {
      pending = bundleFiles(bundle);
      this.#bundles.set(bundle.digest, pending);
      pending.catch(() => this.#bundles.delete(bundle.digest));
    }
    return pending;
  }

  /** A file's bytes, read once. */
  read(path: string): Promise<Buffer> {
    let pending = this.#read.get(path);
    if (pending === undefined) {
      pending = readFile(path);
      this.#read.set(path, pending);
      pending.catch(() => this.#read.delete(path));
    }
    return pending;
  }
}
