// npm packages edited in place after install (patch-package, a local fix in node_modules): their
// lockfile integrity no longer describes their bytes, so their tree hash takes its place.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import {
  computeInputDigest,
  isNotFound,
  writeFileAtomic,
  type Manifest,
  type PackageEntry,
} from "../core/light.js";
import {
  packageTreeDigest,
  packageTreeStamp,
  type PackageTrees,
} from "../scan/index.js";
import type { BuildWrites } from "./build-writes.js";

/** What the cache remembers of one installed package directory. */
interface TreeState {
  /** The project's root (older records lack it): `cache gc` drops a record once it is gone. */
  root?: string;
  /** The lockfile integrity the package had when `pristine` was taken. */
  integrity: string;
  /** {@link installMark} when `pristine` was taken: a reinstall starts again from "as installed". */
  install: string;
  /** {@link packageTreeStamp} of the files as first seen with this integrity: as installed. */
  pristine: string;
  /** Once the files differ from `pristine`: their stamp and tree hash, so an unchanged edit is not hashed again. */
  edited?: { stamp: string; tree: string };
}

/** Options of {@link markEditedPackages}. */
export interface PackageEditOptions {
  cacheDir: string;
  /** The build's package tree walks (default: a walk of each package here). */
  trees?: PackageTrees | undefined;
  /** Where the records are written, as required writes of the build (see {@link editedTree}). */
  writes: BuildWrites;
}

/**
 * The manifest with every npm package whose files differ from how they were installed given its
 * tree hash as integrity (`integritySource: "tree"`), and its input digest recomputed.
 * Detection reads no file contents: a stat stamp (path, mode, size, mtime, inode of every entry)
 * is compared with the one taken when the package was first seen with its lockfile integrity
 * (kept in `<cacheDir>/package-trees/`); only a package that differs is hashed, once per change.
 * A reinstall (`npm ci`, a restored CI cache) gives every file new times and inodes, not new
 * bytes: npm rewrites `node_modules/.package-lock.json` then, so a changed one starts again.
 */
export async function markEditedPackages(
  manifest: Manifest,
  options: PackageEditOptions,
): Promise<Manifest> {
  if (manifest.kind !== "node") return manifest;
  const { trees } = options;
  let edited = false;
  const install = await installMark(manifest.root);
  const packages = await Promise.all(
    manifest.packages.map(async (pkg): Promise<PackageEntry> => {
      if (
        pkg.manager !== "npm" ||
        pkg.integritySource !== "lockfile" ||
        pkg.integrity === null
      )
        return pkg;
      const dir = join(manifest.root, ...pkg.path.split("/"));
      const stamp =
        trees === undefined ? await packageTreeStamp(dir) : trees(dir).stamp;
      const tree = await editedTree(dir, stamp, {
        ...options,
        as: { root: manifest.root, integrity: pkg.integrity, install },
      });
      if (tree === null) return pkg;
      edited = true;
      return { ...pkg, integrity: tree, integritySource: "tree" };
    }),
  );
  if (!edited) return manifest;
  const { inputDigest: _, ...rest } = { ...manifest, packages };
  return { ...rest, inputDigest: computeInputDigest(rest) };
}

/**
 * The package's tree hash when its files differ from how they were installed; else null. The
 * record is fsynced: lost in a crash, the next build would take an edit made meanwhile for the
 * package as installed. The answer never depends on the write, which `writes` runs beside the
 * packing; the build returns only once it is on disk.
 */
async function editedTree(
  dir: string,
  stamp: string,
  options: PackageEditOptions & {
    as: { root: string; integrity: string; install: string };
  },
): Promise<string | null> {
  const { as, writes } = options;
  const path = join(
    options.cacheDir,
    "package-trees",
    `${createHash("sha256").update(dir).digest("hex")}.json`,
  );
  const record = (state: TreeState): void =>
    writes.require(() => writeFileAtomic(path, JSON.stringify(state)));
  const known = await readState(path);
  if (
    known === null ||
    known.integrity !== as.integrity ||
    known.install !== as.install
  ) {
    // First sight since this install with this integrity (an install, an upgrade): as installed.
    record({ ...as, pristine: stamp });
    return null;
  }
  if (stamp === known.pristine) {
    if (known.edited !== undefined) record({ ...as, pristine: stamp });
    return null;
  }
  if (known.edited?.stamp === stamp) return known.edited.tree;
  const tree = await packageTreeDigest(dir);
  record({ ...known, ...as, edited: { stamp, tree } });
  return tree;
}

async function readState(path: string): Promise<TreeState | null> {
  try {
    // Synchronous: one small record per package on every build that scans; awaited, the reads of
    // a hundred packages queue on the thread pool (four round trips each).
    const state = JSON.parse(readFileSync(path, "utf8")) as TreeState;
    return typeof state.pristine === "string" &&
      typeof state.integrity === "string" &&
      typeof state.install === "string"
      ? state
      : null;
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return null;
    throw error;
  }
}

/**
 * Whether the record at `path` (in `<cacheDir>/package-trees/`) can go without hiding an edit: a
 * build reads it as absent (it does not parse), or the project it was taken in no longer exists
 * (a project made again there is a new install, first seen afresh). A record naming no project
 * (from an older envpack) is kept.
 * @throws file-system errors other than a missing file or project
 */
export async function isOrphanedTreeRecord(path: string): Promise<boolean> {
  const state = await readState(path);
  if (state === null) return true;
  if (typeof state.root !== "string") return false;
  try {
    await stat(state.root);
    return false;
  } catch (error) {
    if (isNotFound(error)) return true;
    throw error;
  }
}

/** Which install the project's node_modules is: npm's hidden lockfile, rewritten by every install. */
async function installMark(root: string): Promise<string> {
  try {
    const info = await stat(join(root, "node_modules", ".package-lock.json"));
    return `${info.ino}:${info.mtimeMs}:${info.size}`;
  } catch (error) {
    if (isNotFound(error)) return "";
    throw error;
  }
}
