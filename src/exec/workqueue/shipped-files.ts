// The files the manager sends to workers, each under a content-addressed cache name and read from
// this host once: the runners, envpack-run, bundles, resource_monitor.

import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { TaskBundle, TaskSpec } from "../../core/index.js";
import { runtimeFile } from "../runtime-file.js";
import type { ShippedFile, TaskFiles } from "./task-command.js";

/** Shipped files by path (or bundle digest), and small files' bytes, shared by every worker. */
export class ShippedFiles {
  readonly #shipped = new Map<string, Promise<ShippedFile>>();
  readonly #read = new Map<string, Promise<Buffer>>();

  /** The files a task needs: its runner; with a bundle, envpack-run and the bundle. */
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
    return { runner, envpackRun, bundle };
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

  /** A bundle is named by its digest, as runtime/envpack-run requires (`<hex>.tar.zst`). */
  #bundle(bundle: TaskBundle): Promise<ShippedFile> {
    let pending = this.#shipped.get(bundle.digest);
    if (pending === undefined) {
      pending = stat(bundle.path).then((s) => ({
        cacheName: `${bundle.digest.slice("sha256:".length)}.tar.zst`,
        path: bundle.path,
        size: s.size,
        mode: 0o644,
      }));
      this.#shipped.set(bundle.digest, pending);
      pending.catch(() => this.#shipped.delete(bundle.digest));
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
