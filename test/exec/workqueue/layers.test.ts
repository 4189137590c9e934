// Layered bundles (format 3) on real Work Queue workers with only sh, tar, zstd and coreutils:
// each layer is a cached file of its own, so a new app version sends a worker that holds the
// previous one only its new app layer and index (bytes counted on the connection), and the
// worker's envpack-run unpacks only that layer, linking the rest from the layers it holds.

import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import type { TaskBundle } from "../../../src/core/index.js";
import {
  twoProbeVersions,
  type LayeredApp,
} from "../../helpers/layered-app.js";
import { workerPath } from "../../helpers/min-path.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { startWorker } from "../../helpers/wq-worker.js";
import { harness } from "./harness.js";

const taskBundle = (bundle: LayeredApp): TaskBundle => ({
  digest: bundle.digest,
  path: bundle.path,
  kind: "node",
});

const hexOf = (digest: string) => digest.slice("sha256:".length);

describe("layered bundles on Work Queue workers", () => {
  it("sends version 2 only its app layer and index; the worker links the runtime layer it holds", async () => {
    const [v1, v2] = await twoProbeVersions(
      await tempDir("envpack-wq-layers-"),
    );
    const runtime = v1.layers.find((l) => l.role === "runtime");
    const app2 = v2.layers.find((l) => l.role === "app");
    expect(v2.layers.find((l) => l.role === "runtime")?.digest).toBe(
      runtime?.digest,
    );
    if (runtime === undefined || app2 === undefined)
      throw new Error("missing layers");

    const h = await harness();
    await startWorker({
      port: h.port,
      cores: 1,
      env: { PATH: await workerPath() },
    });
    const worker = await h.nextWorker();
    const run = (bundle: LayeredApp, tag: string) =>
      h.run(
        { kind: "module", module: "", exportName: "probe", args: [] },
        worker,
        { task: { bundle: taskBundle(bundle) } },
      );
    const sentSoFar = () =>
      h.backend.snapshot().workers.find((w) => w.id === worker.id);

    const first = await run(v1, "v1");
    expect(first, JSON.stringify(first)).toMatchObject({ ok: true });
    const before = sentSoFar();
    const second = await run(v2, "v2");
    expect(second, JSON.stringify(second)).toMatchObject({ ok: true });
    const after = sentSoFar();
    if (before === undefined || after === undefined)
      throw new Error("no stats for the worker");

    // Each layer travels once, as its own cached file.
    expect(after.puts[`${hexOf(runtime.digest)}.tar.zst`]).toBe(1);
    expect(after.puts[`${hexOf(app2.digest)}.tar.zst`]).toBe(1);
    expect(after.puts[`${hexOf(v2.digest)}.json`]).toBe(1);
    // Version 2 cost its app layer and index, plus the task's own messages (a few kB).
    const index2 = (await readFile(v2.path)).length;
    const delta = after.bytesSent - before.bytesSent;
    expect(delta).toBeGreaterThan(app2.size + index2);
    expect(delta).toBeLessThan(app2.size + index2 + 16 * 1024);
    expect(delta).toBeLessThan(runtime.size / 100);

    // Two trees, one node binary: version 2's tree links the runtime layer unpacked for version 1.
    const [p1, p2] = [first.value, second.value] as Array<{
      env: string;
      node: string;
    }>;
    expect(p1?.env).not.toBe(p2?.env);
    expect(p2?.node).toBe(p1?.node);
  });
});
