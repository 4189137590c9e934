// The fingerprint cache of builds: the stats of everything a scan read, so an unchanged rebuild
// is answered without scanning.

import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, posix, resolve } from "node:path";
import {
  canonicalJson,
  digestOf,
  isNotFound,
  pathStamps,
  writeAtomic,
  type Digest,
  type Manifest,
} from "../core/light.js";
import {
  isTreeUnchanged,
  lookupAncestors,
  nodeModulesLookups,
  type PackageTrees,
  type PackageTreeWalk,
} from "../scan/light.js";
import { decodeWalks, encodeWalks, type Walks } from "./stored-walks.js";
import { checkTreesAhead } from "./tree-checks.js";

/** The stored form's first field; another is read as no fingerprint. */
const FORMAT = "envpack-fingerprint/3";

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
  /** The identity of a Conda prefix packed whole (a bundle key option), when there is one. */
  environment?: Digest | undefined;
  stats: Array<[path: string, stamp: string]>;
  /** {@link watchedInputs} of the manifest `stats` lists the paths of. */
  watched?: Digest | undefined;
  /**
   * The walk of every npm package directory (`null`: missing when written): a file edited,
   * added or removed inside one is seen by a stat of each path its lines name, without listing a
   * directory.
   */
  trees: Walks;
}

/** The stored form's header (the walks follow it, see encodeWalks). */
interface StoredHeader {
  format: string;
  inputDigest: Digest;
  kind: Manifest["kind"];
  environment?: Digest | undefined;
  stats: Array<[path: string, stamp: string]>;
  /** {@link watchedInputs} of the manifest `stats` lists the paths of (absent in older ones). */
  watched?: Digest | undefined;
}

/** A fingerprint read back: the hit, if every watched path is unchanged, and its package walks. */
export interface RememberedFingerprint {
  hit: Fingerprint | null;
  /** The package tree walks it recorded (to seed packageTrees), whether or not it hit. */
  walks: Map<string, PackageTreeWalk>;
  /** Whether one of `walks` still holds, as isTreeUnchanged answers (checked ahead on threads). */
  isUnchanged: (dir: string, walk: PackageTreeWalk) => boolean;
  /** What {@link writeFingerprint} takes from it rather than stat or encode again (on a miss). */
  stored?: StoredFingerprint | undefined;
}

/** What a build's {@link writeFingerprint} reuses of the fingerprint it read. */
export interface StoredFingerprint {
  /** The walks in their order, with the bytes that encode them. */
  trees: Walks;
  /** The stored form after its header line: the walks' lines, exactly as read. */
  body: Buffer;
  /** The stats of every watched path as read, before the scan read any file. */
  stamps: ReadonlyMap<string, string>;
  /** The watched paths in their stored order, with {@link watchedInputs} of what listed them. */
  paths: string[];
  watched?: Digest | undefined;
  /** The watched paths whose stats differ from the stored ones. */
  changed: ReadonlySet<string>;
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
 * paths, e.g. the manifest file and a whole prefix's records) and its package trees as `trees`
 * walked them (the build's walks, taken before the scan read the files), with the `environment`
 * its bundle is keyed by. Cheap to lose: written without fsync. From `stored` (the fingerprint this
 * build read) it takes the stats of the paths both watch, taken before the scan (a file changed
 * while the scan read it then misses next time), and, when the walks are the very ones it holds,
 * their bytes: after an app edit only the header is encoded.
 */
export async function writeFingerprint(
  cacheDir: string,
  key: Digest,
  manifest: Manifest,
  options: {
    extra: string[];
    trees: PackageTrees;
    environment?: Digest | undefined;
    stored?: StoredFingerprint | undefined;
  },
): Promise<void> {
  const { stored } = options;
  const watched = watchedInputs(manifest, options.extra);
  const paths = isSameWatched(manifest, watched, stored)
    ? stored.paths
    : [...watchedPaths(manifest), ...options.extra];
  const unknown = paths.filter((p) => stored?.stamps.has(p) !== true);
  const fresh = new Map(
    pathStamps(unknown).map((stamp, i) => [unknown[i] as string, stamp]),
  );
  const trees = packageDirs(manifest).map(
    (dir): Fingerprint["trees"][number] => [dir, walkOf(dir, options.trees)],
  );
  const header: StoredHeader = {
    format: FORMAT,
    inputDigest: manifest.inputDigest as Digest,
    kind: manifest.kind,
    environment: options.environment,
    stats: paths.map((p): [string, string] => [
      p,
      (stored?.stamps.get(p) ?? fresh.get(p)) as string,
    ]),
    watched,
  };
  const sameWalks = stored !== undefined && isSameWalks(trees, stored.trees);
  const text = encodeWalks(header, trees, !sameWalks);
  // A fingerprint that does not read back only means a full scan.
  await writeAtomic(
    fingerprintPath(cacheDir, key),
    (temp) =>
      writeFile(temp, sameWalks ? [Buffer.from(text), stored.body] : text),
    { fsync: false },
  );
}

/**
 * Whether `stored` lists the watched paths of this manifest: the same files, packages and extra
 * paths listed them, and only app files changed since (a directory whose listing decides a
 * watched path changes its own stats when that listing changes).
 */
function isSameWatched(
  manifest: Manifest,
  watched: Digest,
  stored: StoredFingerprint | undefined,
): stored is StoredFingerprint {
  if (stored?.watched !== watched) return false;
  const files = new Set(
    manifest.files.map((f) => join(manifest.root, ...f.path.split("/"))),
  );
  for (const path of stored.changed) if (!files.has(path)) return false;
  return true;
}

/** What {@link watchedPaths} lists paths from, besides the file system: one digest. */
function watchedInputs(manifest: Manifest, extra: string[]): Digest {
  return digestOf(
    JSON.stringify([
      manifest.kind,
      manifest.root,
      manifest.env?.prefix ?? null,
      manifest.env?.sitePackages ?? null,
      manifest.files.map((f) => [f.path, f.reason !== undefined]),
      manifest.packages.map((p) => p.path),
      extra,
    ]),
  );
}

/** Whether two walk lists name the same directories in order, each with the same walk object. */
function isSameWalks(a: Walks, b: Walks): boolean {
  return (
    a.length === b.length &&
    a.every(([dir, walk], i) => b[i]?.[0] === dir && b[i]?.[1] === walk)
  );
}

/**
 * The remembered fingerprint as a hit when every watched path still has the same stats (else
 * `hit` is null), with the package walks it recorded.
 */
export async function readFingerprint(
  cacheDir: string,
  key: Digest,
): Promise<RememberedFingerprint> {
  const none = {
    hit: null,
    walks: new Map(),
    isUnchanged: (dir: string, walk: PackageTreeWalk) =>
      isTreeUnchanged(dir, walk.lines),
  };
  let bytes: Buffer;
  try {
    bytes = await readFile(fingerprintPath(cacheDir, key));
  } catch (error) {
    if (isNotFound(error)) return none;
    throw error;
  }
  const fingerprint = parseFingerprint(bytes.toString("utf8"));
  if (fingerprint === null) return none;
  // The trees are checked meanwhile: a hit needs them all, and so does a rebuild's scan.
  const { isUnchanged, areAllUnchanged } = checkTreesAhead(fingerprint.trees);
  const walks = new Map<string, PackageTreeWalk>();
  for (const [dir, walk] of fingerprint.trees)
    if (walk !== null) walks.set(dir, walk);
  const changed = changedStamps(fingerprint.stats);
  if (changed === null && areAllUnchanged())
    return { hit: fingerprint, walks, isUnchanged };
  // The header is one line: JSON escapes every newline inside it.
  const body = bytes.subarray(bytes.indexOf(0x0a) + 1);
  const stamps = changed ?? new Map(fingerprint.stats);
  return {
    hit: null,
    walks,
    isUnchanged,
    stored: {
      trees: fingerprint.trees,
      body,
      stamps,
      paths: fingerprint.stats.map(([path]) => path),
      watched: fingerprint.watched,
      changed: new Set(
        fingerprint.stats
          .filter(([path, stamp]) => stamps.get(path) !== stamp)
          .map(([path]) => path),
      ),
    },
  };
}

/** A stored fingerprint, or null when it is not one of this format or was cut short. */
function parseFingerprint(text: string): Fingerprint | null {
  const stored = decodeWalks<StoredHeader>(text, FORMAT);
  if (stored === null || !Array.isArray(stored.header.stats)) return null;
  const { inputDigest, kind, environment, stats, watched } = stored.header;
  return {
    inputDigest,
    kind,
    environment,
    stats,
    watched,
    trees: stored.walks,
  };
}

/**
 * The watched paths' stats now, when one differs from what the fingerprint recorded (a miss):
 * every path's, for the fingerprint this build writes; null when all are the same. Synchronous:
 * a few hundred stats from the inode cache cost less in one loop than as thread-pool round trips.
 */
function changedStamps(
  stats: Fingerprint["stats"],
): Map<string, string> | null {
  const paths = stats.map(([path]) => path);
  const now = pathStamps(paths);
  if (stats.every(([, stamp], i) => now[i] === stamp)) return null;
  return new Map(now.map((stamp, i) => [paths[i] as string, stamp]));
}

function fingerprintPath(cacheDir: string, key: Digest): string {
  return join(cacheDir, "fingerprints", `${key.slice("sha256:".length)}.fp`);
}

/** npm package directories of a Node manifest: a file edited inside one changes no watched path's stats. */
function packageDirs(manifest: Manifest): string[] {
  return manifest.kind === "node"
    ? manifest.packages.map((p) => join(manifest.root, ...p.path.split("/")))
    : [];
}

function walkOf(dir: string, trees: PackageTrees): PackageTreeWalk | null {
  try {
    return trees(dir);
  } catch (error) {
    if (isNotFound(error)) return null;
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
    // A package installed into a node_modules or scope that already exists (a nested one no
    // package tree walk enters) changes only that directory's stats.
    const starts = [
      ...manifest.files.map((f) => dirname(at(manifest.root, f.path))),
      ...manifest.packages.map((p) => at(manifest.root, p.path)),
    ];
    for (const dir of nodeModulesLookups(lookupAncestors(starts)))
      paths.add(dir);
  } else if (manifest.env !== undefined) {
    paths.add(join(manifest.env.prefix, "conda-meta"));
    // A package pip installs (or removes) beside the records, which may settle an import.
    paths.add(at(manifest.env.prefix, manifest.env.sitePackages));
    for (const pkg of manifest.packages)
      paths.add(at(manifest.env.prefix, pkg.path));
  }
  return [...paths].sort();
}
