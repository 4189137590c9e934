// Layered bundles (format 3) of fixture apps for tests, written by the packer's own writer (the
// way a build writes them), and stored in a cache as a build records them.

import { readdir, readFile, realpath, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { expect, inject } from "vitest";
import { writeLayeredBundle } from "../../packer/index.js";
import { scan } from "../../src/api/index.js";
import { bundleKey } from "../../src/api/bundle-key.js";
import { planBundle } from "../../src/api/plan-bundle.js";
import type { Digest } from "../../src/core/index.js";
import { LocalStore } from "../../src/registry/index.js";
import { tempDir } from "./temp-dir.js";

export type LayeredApp = Awaited<ReturnType<typeof writeLayeredBundle>> & {
  inputDigest: Digest;
};

/** Scans `entries` of the app at `cwd` and writes its layered bundle into `out`. */
export async function writeLayeredApp(
  entries: string[],
  cwd: string,
  out: string,
  options: { cacheDir: string; env?: string | undefined },
): Promise<LayeredApp> {
  const manifest = await scan({ entries, cwd, env: options.env });
  const plan = await planBundle(manifest, { cacheDir: options.cacheDir });
  try {
    const written = await writeLayeredBundle(
      manifest.kind,
      [...plan.leading, ...plan.entries],
      { outDir: out },
    );
    return { ...written, inputDigest: manifest.inputDigest as Digest };
  } finally {
    await plan.dispose();
  }
}

/**
 * Puts a layered bundle in a cache: each layer and the index as blobs, the index recorded under
 * the default bundle key of its input digest. Returns the key.
 */
export async function cacheLayeredApp(
  cacheDir: string,
  bundle: LayeredApp,
): Promise<Digest> {
  const store = new LocalStore(cacheDir);
  for (const layer of bundle.layers)
    await store.putFile(layer.path, layer.digest);
  const index = await store.putFile(bundle.path, bundle.digest);
  const key = bundleKey(bundle.inputDigest);
  await store.record({
    key,
    inputDigest: bundle.inputDigest,
    digest: bundle.digest,
    size: index.size,
    usedAt: Date.now(),
    meta: { format: "3", kind: "node" },
  });
  return key;
}

/** Where a layered bundle's blob lies in a cache. */
export const cachedBlob = (cacheDir: string, digest: Digest): string =>
  join(cacheDir, "blobs", "sha256", digest.slice("sha256:".length));

/**
 * Versions 1 and 2 of a one-module app (v2 with a line added) whose `probe()` reports where it
 * ran and the inode of the node binary running it, written as layered bundles in `dir/out`.
 */
export async function twoProbeVersions(
  dir: string,
): Promise<[LayeredApp, LayeredApp]> {
  const entry = join(dir, "probe.mjs");
  await writeFile(
    entry,
    `import { statSync } from "node:fs";
export function probe() {
  return { env: process.env.ENVPACK_ENV, node: String(statSync(process.execPath).ino) };
}
`,
  );
  const out = join(dir, "out");
  const cacheDir = join(dir, "build-cache");
  const v1 = await writeLayeredApp([entry], dir, out, { cacheDir });
  await writeFile(entry, `${await readFile(entry, "utf8")}// version 2\n`);
  const v2 = await writeLayeredApp([entry], dir, out, { cacheDir });
  return [v1, v2];
}

/** Inode of each unpacked layer directory under `dir`, by name (locks, temps, entries left out). */
export async function layerInodes(dir: string): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const name of await readdir(dir))
    if (/^[0-9a-f]{64}$/.test(name))
      out.set(name, (await stat(join(dir, name), { bigint: true })).ino);
  return out;
}

/** What {@link writeCondaProbe}'s app prints. */
export interface CondaProbeReport {
  prefix: string;
  check: Record<string, unknown>;
}

/**
 * A Python app (`main.py`, in a new temp directory) printing `sys.prefix` and the Conda fixture's
 * `fixturepkg.check()` as JSON; `version` makes apps that differ in their own file only.
 */
export async function writeCondaProbe(version = 1): Promise<string> {
  const app = await tempDir("envpack-conda-probe-");
  await writeFile(
    join(app, "main.py"),
    `import json, sys, fixturepkg, six, jsonpointer
print(json.dumps({"prefix": sys.prefix, "check": fixturepkg.check()}))
# version ${version}
`,
  );
  return app;
}

/**
 * Checks a probe's report: the prefix python ran from is `prefix` (whose `bin/python3` the
 * bundle's tree reaches), every path the fixture reports is inside it, and every check holds.
 */
export function expectRelocatedInto(
  report: CondaProbeReport,
  prefix: string,
): void {
  expect(report.prefix).toBe(prefix);
  const paths = Object.values(report.check).filter(
    (v): v is string => typeof v === "string" && v.startsWith("/"),
  );
  expect(paths.length).toBeGreaterThan(0);
  expect(
    paths.filter((p) => p !== prefix && !p.startsWith(`${prefix}/`)),
  ).toEqual([]);
  expect(Object.values(report.check).filter((v) => v === false)).toEqual([]);
}

/** The prefix a bundle's tree runs python from: its `bin/python3`, links followed. */
export async function prefixOfTree(tree: string): Promise<string> {
  return dirname(dirname(await realpath(join(tree, "bin", "python3"))));
}

/** Version `version` of the Conda probe app, against the Conda fixture, as a layered bundle in `out`. */
export async function condaProbeBundle(
  version: number,
  out: string,
  cacheDir: string,
): Promise<LayeredApp> {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return writeLayeredApp(["main.py"], await writeCondaProbe(version), out, {
    cacheDir,
    env: conda.prefix,
  });
}
