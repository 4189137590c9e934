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
  cacheDir: string,
  trees?: PackageTrees,
): Promise<Manifest> {
  if (manifest.kind !== "node") return manifest;
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
      const tree = await editedTree(
        dir,
        stamp,
        { root: manifest.root, integrity: pkg.integrity, install },
        cacheDir,
      );
      if (tree === null) return pkg;
      edited = true;
      return { ...pkg, integrity: tree, integritySource: "tree" };
    }),
  );
  if (!edited) return manifest;
  const { inputDigest: _, ...rest } = { ...manifest, packages };
  return { ...rest, inputDigest: computeInputDigest(rest) };
}

/** The package's tree hash when its files differ from how they were installed; else null. */
async function editedTree(
  dir: string,
  stamp: string,
  as: { root: string; integrity: string; install: string },
  cacheDir: string,
): Promise<string | null> {
  const path = join(
    cacheDir,
    "package-trees",
    `${createHash("sha256").update(dir).digest("hex")}.json`,
  );
  const known = await readState(path);
  if (
    known === null ||
    known.integrity !== as.integrity ||
    known.install !== as.install
  ) {
    // First sight since this install with this integrity (an install, an upgrade): as installed.
    const state: TreeState = { ...as, pristine: stamp };
    await writeFileAtomic(path, JSON.stringify(state));
    return null;
  }
  if (stamp === known.pristine) {
    if (known.edited !== undefined)
      await writeFileAtomic(path, JSON.stringify({ ...as, pristine: stamp }));
    return null;
  }
  if (known.edited?.stamp === stamp) return known.edited.tree;
  const tree = await packageTreeDigest(dir);
  const state: TreeState = { ...known, ...as, edited: { stamp, tree } };
  await writeFileAtomic(path, JSON.stringify(state));
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
