// The keys a layered bundle's layers are cached under: each covers exactly what decides that
// layer's bytes, so an app edit leaves the runtime and package keys (and blobs) as they were.

import {
  canonicalJson,
  compare,
  digestOf,
  type Digest,
  type Manifest,
  type PackageEntry,
} from "../core/light.js";
import type { LayerRole } from "../../packer/index.js";
import { bundleKey, type BundleKeyOptions } from "./bundle-key.js";

/** The build options a layer key reads (those that change bytes). */
export type LayerKeyOptions = BundleKeyOptions;

/**
 * sha256 over the layer's role, the builder (`builderIdentity()`: envpack, bundle format, the packer's
 * code digest, zstd, esbuild), the zstd level and the inputs of that layer alone:
 * - runtime: Node's version and platform (the binary a build picks for them, see planBundle);
 *   Conda's python package as the manifest records it, with the prefix and engine, which decide
 *   its placeholders;
 * - packages: every package (id, version, build, path, integrity, links, dependencies) as the
 *   input digest covers them; for Conda also the prefix, `prune`, the engine and, packed whole,
 *   the prefix's identity (`environment`);
 * - app: the bundle key (the whole input digest): the app layer carries the manifest.
 */
export function layerKeys(
  manifest: Manifest,
  builder: string,
  options: LayerKeyOptions,
): Record<LayerRole, Digest> {
  const keyOf = (role: LayerRole, inputs: object): Digest =>
    layerKey(role, manifest.kind, builder, options, inputs);
  const { name, version, platform } = manifest.runtime;
  return {
    runtime:
      manifest.kind === "conda"
        ? condaRuntimeKey(manifest, builder, options)
        : keyOf("runtime", { runtime: { name, version, platform } }),
    packages: keyOf("packages", {
      packages: keyedPackages(manifest.packages),
      ...(manifest.kind === "conda" ? condaInputs(manifest, options) : {}),
      prune: options.prune === true,
      environment: options.environment,
    }),
    app: keyOf("app", {
      bundle: bundleKey(manifest.inputDigest as Digest, options),
    }),
  };
}

/** The fields of a manifest's package a layer key reads. */
type KeyedPackage = Pick<
  PackageEntry,
  | "id"
  | "name"
  | "version"
  | "manager"
  | "build"
  | "path"
  | "integrity"
  | "dependencies"
  | "links"
>;

/**
 * The runtime key of a Conda bundle: {@link layerKeys}' for a manifest of kind `conda`. It reads
 * only the runtime, the prefix and the `conda:python` package, so a build knows it from the
 * prefix before its scan is done.
 */
export function condaRuntimeKey(
  manifest: {
    runtime: Pick<Manifest["runtime"], "name" | "version" | "platform">;
    env?: Manifest["env"];
    packages: readonly KeyedPackage[];
  },
  builder: string,
  options: LayerKeyOptions,
): Digest {
  const { name, version, platform } = manifest.runtime;
  return layerKey("runtime", "conda", builder, options, {
    runtime: { name, version, platform },
    interpreter: keyedPackages(manifest.packages).filter(
      (p) => p.manager === "conda" && p.name === "python",
    ),
    ...condaInputs(manifest, options),
  });
}

/** What a Conda layer key reads beyond its packages: the prefix and the engine. */
function condaInputs(
  manifest: { env?: Manifest["env"] },
  options: LayerKeyOptions,
) {
  return {
    prefix: manifest.env?.prefix ?? null,
    sitePackages: manifest.env?.sitePackages ?? null,
    engine: options.engine ?? "builtin",
  };
}

function keyedPackages(packages: readonly KeyedPackage[]) {
  return packages
    .map((p) => ({
      id: p.id,
      name: p.name,
      version: p.version,
      manager: p.manager,
      build: p.build ?? null,
      path: p.path,
      integrity: p.integrity,
      dependencies: [...p.dependencies].sort(compare),
      links: p.links ?? [],
    }))
    .sort((a, b) => compare(a.id, b.id));
}

/**
 * The runtime key of a Node bundle for this machine's node, known before the scan (equal to
 * {@link layerKeys}' runtime key of a manifest scanned for it).
 */
export function hostNodeRuntimeKey(
  builder: string,
  options: LayerKeyOptions,
): Digest {
  return layerKey("runtime", "node", builder, options, {
    runtime: {
      name: "node",
      version: process.versions.node,
      platform: `${process.platform}-${process.arch}`,
    },
  });
}

function layerKey(
  role: LayerRole,
  kind: Manifest["kind"],
  builder: string,
  options: LayerKeyOptions,
  inputs: object,
): Digest {
  return digestOf(
    canonicalJson({
      key: "envpack-layer-key/1",
      builder,
      kind,
      level: options.level ?? 3,
      role,
      ...inputs,
    }),
  );
}
