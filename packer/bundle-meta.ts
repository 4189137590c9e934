// What a bundle says about itself, in `.envpack/bundle.json`, and where it keeps its manifest.

import { canonicalJson, type Manifest } from "../src/core/light.js";

/** Bumped whenever the bundle layout or how entries are compiled changes (3: an index of layers). */
export const BUNDLE_FORMAT = 3;

/** Path of the bundle metadata inside every bundle. */
export const BUNDLE_META_PATH = ".envpack/bundle.json";
/** Path of the full manifest inside every bundle. */
export const MANIFEST_PATH = ".envpack/manifest.json";

/** The metadata every bundle carries. */
export interface BundleMeta {
  schemaVersion: 1;
  kind: Manifest["kind"];
  inputDigest: string;
  runtime: Manifest["runtime"];
  /** Bundle-relative paths of the app's entries (Node bundles). */
  entries: string[];
  generator: Manifest["generator"];
}

/** The `.envpack/manifest.json` and `.envpack/bundle.json` entries every bundle carries. */
export function metaEntries(
  manifest: Manifest,
  entries: string[],
): Array<{ path: string; type: "file"; data: Uint8Array }> {
  const meta: BundleMeta = {
    schemaVersion: 1,
    kind: manifest.kind,
    inputDigest: manifest.inputDigest,
    runtime: manifest.runtime,
    entries,
    generator: manifest.generator,
  };
  // Absolute paths of the build machine would make bundles depend on where they were built.
  const portable: Manifest = {
    ...manifest,
    root: ".",
    ...(manifest.env ? { env: { ...manifest.env, prefix: "." } } : {}),
  };
  return [
    {
      path: MANIFEST_PATH,
      type: "file",
      data: Buffer.from(canonicalJson(portable) + "\n"),
    },
    {
      path: BUNDLE_META_PATH,
      type: "file",
      data: Buffer.from(JSON.stringify(meta, null, 2) + "\n"),
    },
  ];
}

/** Variables that would let the host's packages leak into a bundled interpreter. */
const HOST_VARIABLES = {
  node: "NODE_PATH NODE_OPTIONS",
  python3: "PYTHONPATH PYTHONHOME PYTHONSTARTUP",
};

/**
 * `bin/envpack-app`: runs the app's first entry with the bundle's own interpreter (`bin/node` or
 * `bin/python3`), with the host's module search variables cleared.
 */
export function appLauncherEntry(
  interpreter: "node" | "python3",
  entry: string,
): { path: string; type: "file"; data: Uint8Array; executable: true } {
  const script = `#!/bin/sh
# Runs the app's entry with the bundled ${interpreter}.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
unset ${HOST_VARIABLES[interpreter]}
exec "$here/${interpreter}" "$here/../${entry}" "$@"
`;
  return {
    path: "bin/envpack-app",
    type: "file",
    data: Buffer.from(script),
    executable: true,
  };
}
