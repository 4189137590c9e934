// The fingerprint cache of builds: the stats of everything a scan read, so an unchanged rebuild
// is answered without scanning.

import { readFile, stat } from "node:fs/promises";
import { join, posix, resolve } from "node:path";
import {
  canonicalJson,
  digestOf,
  isNotFound,
  writeFileAtomic,
  type Digest,
  type Manifest,
} from "../core/light.js";
import { packageTreeStamp } from "../scan/light.js";

/** The build options that decide which scan a fingerprint stands for. */
export interface FingerprintKeyOptions {
  entries?: string[] | undefined;
  manifest?: string | undefined;
  env?: string | undefined;
  prune?: boolean | undefined;
  node?: string | undefined;
  platform?: string | undefined;
  engine?: "builtin" | "conda-pack" | undefined;
  onlyImported?: boolean | undefined;
  trace?: string[] | undefined;
  include?: string[] | undefined;
}

/** Stats of every file and directory a scan's result depends on, to answer rebuilds without scanning. */
export interface Fingerprint {
  inputDigest: Digest;
  kind: Manifest["kind"];
  stats: Array<[path: string, stamp: string]>;
  /** {@link packageTreeStamp} of every npm package directory: a file edited inside one is seen. */
  trees: Array<[dir: string, stamp: string]>;
}

/** What a build's fingerprint is stored under: its entries, manifest file and options, resolved against `cwd`. */
export function fingerprintKey(
  options: FingerprintKeyOptions,
  cwd: string,
): Digest {
  return digestOf(
    canonicalJson({
      entries: (options.entries ?? []).map((e) => resolve(cwd, e)).sort(),
      manifest:
        options.manifest === undefined ? null : resolve(cwd, options.manifest),
      env: options.env === undefined ? null : resolve(cwd, options.env),
      prune: options.prune === true,
      node: options.node ?? null,
      platform: options.platform ?? null,
      engine: options.engine ?? "builtin",
      // Absent unless set, so that default builds keep their fingerprints.
      onlyImported: options.onlyImported === true ? true : undefined,
      trace: options.trace,
      include:
        options.include === undefined || options.include.length === 0
          ? undefined
          : options.include,
    }),
  );
}

/**
 * Remembers `manifest` under `key` with the stats of what it was scanned from (and of `extra`
 * paths, e.g. the manifest file). Cheap to lose: written without fsync.
 */
export async function writeFingerprint(
  cacheDir: string,
  key: Digest,
  manifest: Manifest,
  extra: string[],
): Promise<void> {
  const paths = [...watchedPaths(manifest), ...extra];
  const fingerprint: Fingerprint = {
    inputDigest: manifest.inputDigest as Digest,
    kind: manifest.kind,
    stats: await Promise.all(
      paths.map(async (p): Promise<[string, string]> => [p, await stampOf(p)]),
    ),
    trees: await Promise.all(
      packageDirs(manifest).map(async (d): Promise<[string, string]> => [
        d,
        await treeStampOf(d),
      ]),
    ),
  };
  // A fingerprint that does not parse only means a full scan.
  await writeFileAtomic(
    fingerprintPath(cacheDir, key),
    JSON.stringify(fingerprint),
    {
      fsync: false,
    },
  );
}

/** The remembered fingerprint when every watched path still has the same stats; else null. */
export async function readFingerprint(
  cacheDir: string,
  key: Digest,
): Promise<Fingerprint | null> {
  let fingerprint: Fingerprint;
  try {
    fingerprint = JSON.parse(
      await readFile(fingerprintPath(cacheDir, key), "utf8"),
    ) as Fingerprint;
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return null;
    throw error;
  }
  // A fingerprint without package tree stamps predates them: it cannot vouch for edited packages.
  if (!Array.isArray(fingerprint.trees)) return null;
  for (const [path, stamp] of fingerprint.stats)
    if ((await stampOf(path)) !== stamp) return null;
  const trees = await Promise.all(
    fingerprint.trees.map(
      async ([dir, stamp]) => (await treeStampOf(dir)) === stamp,
    ),
  );
  return trees.every(Boolean) ? fingerprint : null;
}

function fingerprintPath(cacheDir: string, key: Digest): string {
  return join(cacheDir, "fingerprints", `${key.slice("sha256:".length)}.json`);
}

/** npm package directories of a Node manifest: a file edited inside one changes no watched path's stats. */
function packageDirs(manifest: Manifest): string[] {
  return manifest.kind === "node"
    ? manifest.packages.map((p) => join(manifest.root, ...p.path.split("/")))
    : [];
}

async function treeStampOf(dir: string): Promise<string> {
  try {
    return await packageTreeStamp(dir);
  } catch (error) {
    if (isNotFound(error)) return "missing";
    throw error;
  }
}

async function stampOf(path: string): Promise<string> {
  try {
    const info = await stat(path, { bigint: true });
    return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
  } catch (error) {
    if (isNotFound(error)) return "missing";
    throw error;
  }
}

/** The paths whose stats vouch for a manifest: app files, package metadata and lockfiles, the directories holding them. */
function watchedPaths(manifest: Manifest): string[] {
  const at = (base: string, rel: string) => join(base, ...rel.split("/"));
  const paths = new Set<string>();
  for (const file of manifest.files) {
    paths.add(at(manifest.root, file.path));
    // A file added to an asset directory or under an include changes its directory's stats.
    if (file.reason !== undefined)
      paths.add(at(manifest.root, posix.dirname(file.path)));
  }
  if (manifest.kind === "node") {
    for (const lock of [
      "package-lock.json",
      "npm-shrinkwrap.json",
      "node_modules/.package-lock.json",
      "node_modules",
    ]) {
      paths.add(at(manifest.root, lock));
    }
    for (const pkg of manifest.packages) {
      paths.add(at(manifest.root, pkg.path));
      paths.add(at(manifest.root, `${pkg.path}/package.json`));
    }
  } else if (manifest.env !== undefined) {
    paths.add(join(manifest.env.prefix, "conda-meta"));
    for (const pkg of manifest.packages)
      paths.add(at(manifest.env.prefix, pkg.path));
  }
  return [...paths].sort();
}
