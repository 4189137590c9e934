// Layered bundles (format 3) through a registry, the real docker-registry and a directory: one
// OCI manifest per bundle with one OCI layer per envpack layer; a push sends only the layers the
// registry lacks and a pull fetches only those the cache lacks, bytes counted on the wire.

import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, inject, it } from "vitest";
import { ensureUnpacked } from "../../packer/index.js";
import { pull, push } from "../../src/api/index.js";
import { LocalStore } from "../../src/registry/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { startProxy, type Proxy } from "../helpers/http-proxy.js";
import {
  cacheLayeredApp,
  cachedBlob,
  writeLayeredApp,
  type LayeredApp,
} from "../helpers/layered-app.js";
import { workerPath } from "../helpers/min-path.js";
import { tempDir } from "../helpers/temp-dir.js";

/** Versions 1 and 2 of the hello app, version 2 with one app file edited. */
async function twoVersions(work: string): Promise<[LayeredApp, LayeredApp]> {
  const app = await appCopy("hello");
  const cacheDir = join(work, "build-cache");
  const v1 = await writeLayeredApp(["src/main.ts"], app, join(work, "v1"), {
    cacheDir,
  });
  const greet = join(app, "src", "greet.ts");
  await writeFile(
    greet,
    (await readFile(greet, "utf8")).replace("hello,", "howdy,"),
  );
  const v2 = await writeLayeredApp(["src/main.ts"], app, join(work, "v2"), {
    cacheDir,
  });
  return [v1, v2];
}

const indexSize = async (bundle: LayeredApp) =>
  (await readFile(bundle.path)).length;
const layerOf = (bundle: LayeredApp, role: string) => {
  const layer = bundle.layers.find((l) => l.role === role);
  if (layer === undefined) throw new Error(`no ${role} layer`);
  return layer;
};

/** Body bytes of blob uploads (`up`) and blob downloads (`down`) through the proxy since `from`. */
function blobBytes(proxy: Proxy, from: number): { up: number; down: number } {
  let up = 0;
  let down = 0;
  proxy.requests.forEach((request, i) => {
    if (i < from) return;
    const counts = proxy.bodies[i] ?? { up: 0, down: 0 };
    if (/^PUT \S+\/blobs\/uploads\//.test(request)) up += counts.up;
    if (/^GET \S+\/blobs\/sha256:/.test(request)) down += counts.down;
  });
  return { up, down };
}

describe("layered bundles through a registry", () => {
  it.each(["oci", "directory"] as const)(
    "%s: version 2 after version 1 pushes and pulls only its app layer and index; the pulled bundle runs",
    async (kind) => {
      const work = await tempDir("envpack-registry-layers-");
      const [v1, v2] = await twoVersions(work);
      const host = inject("registry").openHost;
      const proxy =
        kind === "oci" ? await startProxy({ target: host }) : undefined;
      try {
        const registry =
          proxy === undefined
            ? { url: join(work, "registry") }
            : {
                url: `oci://${proxy.host}/t-${randomBytes(6).toString("hex")}`,
                insecure: true,
              };
        const full = async (b: LayeredApp) =>
          b.layers.reduce((sum, l) => sum + l.size, 0) + (await indexSize(b));
        const delta = layerOf(v2, "app").size + (await indexSize(v2));

        const source = join(work, "source");
        await cacheLayeredApp(source, v1);
        const first = await push({
          digest: v1.digest,
          registry,
          cacheDir: source,
        });
        expect(first.sentBytes).toBe(await full(v1));
        expect(first.layers?.map((l) => l.role)).toEqual([
          "runtime",
          "packages",
          "app",
        ]);
        await cacheLayeredApp(source, v2);
        let mark = proxy?.requests.length ?? 0;
        const second = await push({
          digest: v2.digest,
          registry,
          cacheDir: source,
        });
        expect(second.sentBytes).toBe(delta);
        if (proxy !== undefined) expect(blobBytes(proxy, mark).up).toBe(delta);

        const machine = join(work, "machine");
        const got1 = await pull({
          inputDigest: v1.inputDigest,
          registry,
          cacheDir: machine,
        });
        expect(got1.transferred).toBe(await full(v1));
        mark = proxy?.requests.length ?? 0;
        const got2 = await pull({
          inputDigest: v2.inputDigest,
          registry,
          cacheDir: machine,
        });
        expect(got2).toMatchObject({ digest: v2.digest, transferred: delta });
        expect(got2.layers?.map((l) => [l.role, l.pulled])).toEqual([
          ["runtime", false],
          ["packages", false],
          ["app", true],
        ]);
        if (proxy !== undefined)
          expect(blobBytes(proxy, mark).down).toBe(delta);
        // Shared layers are held once: 3 layers of v1, v2's app layer, two indexes.
        expect(await new LocalStore(machine).list()).toHaveLength(6);

        const { dir } = await ensureUnpacked({
          file: cachedBlob(machine, v2.digest),
          digest: v2.digest,
          envsDir: join(machine, "envs"),
        });
        const ran = await execa(join(dir, "bin", "envpack-app"), [], {
          env: { PATH: await workerPath() },
          extendEnv: false,
        });
        expect(ran.stdout).toContain("howdy, world");
      } finally {
        await proxy?.close();
      }
    },
  );

  it("oci: one manifest per bundle, the index as its config and one OCI layer per envpack layer; a layer served corrupt keeps nothing", async () => {
    const work = await tempDir("envpack-registry-layers-");
    const [v1] = await twoVersions(work);
    const host = inject("registry").openHost;
    const repo = `t-${randomBytes(6).toString("hex")}`;
    const source = join(work, "source");
    const key = await cacheLayeredApp(source, v1);
    await push({
      digest: v1.digest,
      registry: { url: `oci://${host}/${repo}`, insecure: true },
      cacheDir: source,
    });
    const manifest = (await (
      await fetch(`http://${host}/v2/${repo}/manifests/input-${key.slice(7)}`, {
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      })
    ).json()) as {
      config: { mediaType: string; digest: string };
      layers: Array<{
        mediaType: string;
        digest: string;
        annotations: Record<string, string>;
      }>;
    };
    expect(manifest.config).toMatchObject({
      mediaType: "application/vnd.envpack.bundle.index.v1+json",
      digest: v1.digest,
    });
    expect(
      manifest.layers.map((l) => [
        l.mediaType,
        l.digest,
        l.annotations["dev.envpack.layer.role"],
      ]),
    ).toEqual(
      v1.layers.map((l) => [
        "application/vnd.envpack.layer.v1.tar+zstd",
        l.digest,
        l.role,
      ]),
    );

    const app = layerOf(v1, "app").digest;
    const corrupting = await startProxy({
      target: host,
      decide: (req) => ({
        forward: true,
        corrupt: (req.url ?? "").endsWith(`/blobs/${app}`),
      }),
    });
    const machine = join(work, "machine");
    try {
      await expect(
        pull({
          inputDigest: v1.inputDigest,
          registry: { url: `oci://${corrupting.host}/${repo}`, insecure: true },
          cacheDir: machine,
        }),
      ).rejects.toMatchObject({ code: "ENVPACK_INTEGRITY_DIGEST_MISMATCH" });
    } finally {
      await corrupting.close();
    }
    const store = new LocalStore(machine);
    expect(await store.has(app)).toBe(false);
    expect(await store.lookup(key)).toBeNull();
    expect(await readdir(join(machine, "tmp"))).toEqual([]);
  });
});
