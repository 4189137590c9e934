// The manifest's schema version and its input digest: what a scan seals a manifest with, apart from
// the schema itself (zod), so that scanning never loads the schema library.

import { digestOf, type Digest } from "./digest.js";
import { canonicalJson, compare } from "./canonical-json.js";

/**
 * Bumped on any change to what the input digest covers, and on any change to the manifest's shape
 * that a reader of the previous version would misread (a field removed, renamed or retyped). An
 * added optional field that is outside the digest and only informs (`trace`,
 * `unresolved[].resolvedByTrace`) does not bump it: the schema's objects drop keys they do not
 * know, so a previous reader loads such a manifest, and a manifest without the field still loads.
 */
export const MANIFEST_SCHEMA_VERSION = 2 as const;

/**
 * The fields of a manifest the input digest reads (a manifest without its `inputDigest`), by
 * shape: the schema module imports this one, not the other way round.
 */
export interface DigestedManifest {
  schemaVersion: number;
  kind: string;
  runtime: unknown;
  env?: { sitePackages?: unknown } | undefined;
  entries: readonly string[];
  files: ReadonlyArray<{ path: string; sha256: unknown }>;
  packages: ReadonlyArray<{
    id: string;
    name: unknown;
    version: unknown;
    manager: unknown;
    build?: unknown;
    path: unknown;
    integrity: unknown;
    dependencies: readonly string[];
    links?: unknown;
  }>;
}

/**
 * The canonical input digest: sha256 over the canonical JSON of what determines a bundle's
 * contents — schema version, kind, runtime identity and platform, entries, app file hashes and
 * packages with their integrity and where they are read from (path, links). Never absolute paths, mtimes or host names, so moving the
 * project does not change it; editing an app file or upgrading a package does.
 */
export function computeInputDigest(manifest: DigestedManifest): Digest {
  const byKey =
    <T>(key: (t: T) => string) =>
    (a: T, b: T) =>
      compare(key(a), key(b));
  return digestOf(
    canonicalJson({
      schemaVersion: manifest.schemaVersion,
      kind: manifest.kind,
      runtime: manifest.runtime,
      sitePackages: manifest.env?.sitePackages,
      entries: [...manifest.entries].sort(compare),
      files: manifest.files
        .map((f) => ({ path: f.path, sha256: f.sha256 }))
        .sort(byKey((f) => f.path)),
      packages: manifest.packages
        .map((p) => ({
          id: p.id,
          name: p.name,
          version: p.version,
          manager: p.manager,
          build: p.build,
          path: p.path,
          integrity: p.integrity,
          dependencies: [...p.dependencies].sort(compare),
          links: p.links,
        }))
        .sort(byKey((p) => p.id)),
    }),
  );
}
