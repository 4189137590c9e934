// Layered bundles (format 3) on the local backend: a worker unpacks each layer once, so version 2
// of an app unpacks only its app layer and its tree links the node binary version 1's unpacked.

import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TaskBundle } from "../../src/core/index.js";
import { LocalBackend } from "../../src/exec/index.js";
import { emptyQueue } from "../helpers/empty-queue.js";
import {
  layerInodes,
  twoProbeVersions,
  type LayeredApp,
} from "../helpers/layered-app.js";
import { tempDir } from "../helpers/temp-dir.js";

const started: LocalBackend[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.shutdown()));
});

describe("layered bundles on the local backend", () => {
  it("runs version 1 then version 2, unpacking only version 2's app layer", async () => {
    const dir = await tempDir("envpack-local-layers-");
    const [v1, v2] = await twoProbeVersions(dir);

    const workDir = join(dir, "work");
    const backend = new LocalBackend({ workers: [{ cores: 1 }], workDir });
    started.push(backend);
    await backend.start({
      workerJoined: () => {},
      workerLeft: () => {},
      ...emptyQueue,
    });
    const run = (bundle: LayeredApp, id: string) => {
      const taskBundle: TaskBundle = {
        digest: bundle.digest,
        path: bundle.path,
        kind: "node",
      };
      return backend.runTask(
        {
          id,
          category: "default",
          payload: {
            kind: "module",
            module: "",
            exportName: "probe",
            args: [],
          },
          resources: {},
          attempt: 0,
          bundle: taskBundle,
        },
        {
          workerId: "local-1",
          label: { cores: 1, memory: 200, disk: 200, gpus: 0 },
        },
        new AbortController().signal,
      );
    };
    const first = await run(v1, "v1");
    expect(first, JSON.stringify(first)).toMatchObject({ ok: true });
    const layers = join(workDir, "local-1", "envs", "layers");
    const before = await layerInodes(layers);
    const second = await run(v2, "v2");
    expect(second, JSON.stringify(second)).toMatchObject({ ok: true });
    const after = await layerInodes(layers);
    for (const [name, ino] of before) expect(after.get(name)).toBe(ino);
    expect([...after.keys()].filter((n) => !before.has(n))).toEqual([
      v2.layers.find((l) => l.role === "app")?.digest.slice(7),
    ]);
    const [p1, p2] = [first.value, second.value] as Array<{
      env: string;
      node: string;
    }>;
    expect(p2?.env).not.toBe(p1?.env);
    expect(p2?.node).toBe(p1?.node);
  });
});
