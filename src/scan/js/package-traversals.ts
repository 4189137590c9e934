// What following the imports inside installed packages found, from a given set of package files
// the app reaches: remembered so that a rebuild after an app edit that reaches the same package
// files resolves nothing inside packages again.

import { createHash } from "node:crypto";
import { basename, join, sep } from "node:path";
import { writeFileAtomic, type UnresolvedEntry } from "../../core/light.js";
import { lookupAncestors, nodeModulesLookups } from "../npm/lookup-dirs.js";
import type { PackageTrees } from "../npm/package-tree.js";
import {
  layoutHolds,
  readStored,
  statStamp,
  strictStampOf,
} from "./stored-stamps.js";

/** The stored form; another is read as absent. */
const FORMAT = "envpack-package-traversal/1";

/** What the package side of a scan added, replayed as it was recorded (absolute paths). */
export interface PackageTraversal {
  /** Package files read. */
  parsed: number;
  /** Package directory → the package directories its files import. */
  edges: Array<[dir: string, targets: string[]]>;
  /** Findings inside packages, with the directory of the package each is in. */
  unresolved: Array<UnresolvedEntry & { packageDir?: string }>;
  /** Linked package directories outside node_modules that the packages reached. */
  linkDirs: string[];
  /** Symlinks through which installed packages were found: link → real directory. */
  links: Array<[link: string, real: string]>;
}

/** What a traversal's answer depends on besides the package files' trees. */
export interface TraversalInputs {
  /** Every package directory whose files were read, imported or linked. */
  packageDirs: string[];
  /** Directories of the files read: Node looks for packages in `node_modules` above each. */
  fileDirs: string[];
}

interface StoredTraversal {
  format: string;
  scanner: string;
  key: string;
  /** Package directory → its strict tree stamp when the traversal read it. */
  trees: Array<[dir: string, strict: string]>;
  /** Each lookup directory (`node_modules`, its scopes, `tsconfig.json`) → its stat stamp. */
  layout: Array<[path: string, stamp: string]>;
  traversal: PackageTraversal;
}

/**
 * Package traversals kept in `dir`, one file per set of starting files. A remembered traversal
 * is used only while every package directory it read has the strict tree stamp it had (a file
 * of one edited, added or removed changes it) and every directory where Node looks packages up
 * from those files (each `node_modules` above them, their `@scope` directories, and each
 * `tsconfig.json` above them outside node_modules) has the same stats: a package installed,
 * removed or replaced anywhere a lookup passes changes one of them. Tree stamps come from the
 * build's walks, taken before the files were read, as the build's fingerprint takes them.
 */
export class PackageTraversals {
  readonly #dir: string;
  readonly #scanner: string;
  readonly #trees: PackageTrees;
  /** Traversals found by this build, by store path, to write on save. */
  readonly #learnt = new Map<string, StoredTraversal>();

  constructor(dir: string, scanner: string, trees: PackageTrees) {
    this.#dir = dir;
    this.#scanner = scanner;
    this.#trees = trees;
  }

  /** The traversal remembered for these starting files (`[path, package dir]`), if still valid. */
  recall(
    roots: ReadonlyArray<readonly [string, string]>,
  ): PackageTraversal | null {
    const key = keyOf(roots);
    const stored = readStored<StoredTraversal>(
      this.#pathOf(key),
      { format: FORMAT, scanner: this.#scanner, key },
      ["trees", "layout"],
    );
    if (
      stored === null ||
      typeof stored.traversal !== "object" ||
      stored.traversal === null ||
      !layoutHolds(stored.layout)
    )
      return null;
    for (const [dir, strict] of stored.trees)
      if (strictStampOf(this.#trees, dir) !== strict) return null;
    return stored.traversal;
  }

  /**
   * Remembers a traversal from these starting files (written by {@link save}), with the stamps
   * and lookup stats it depends on as they are now.
   */
  remember(
    roots: ReadonlyArray<readonly [string, string]>,
    traversal: PackageTraversal,
    inputs: TraversalInputs,
  ): void {
    const key = keyOf(roots);
    const trees: StoredTraversal["trees"] = [];
    for (const dir of new Set(inputs.packageDirs)) {
      const strict = strictStampOf(this.#trees, dir);
      // A directory gone since it was read: nothing stable to remember.
      if (strict === "missing") return;
      trees.push([dir, strict]);
    }
    const stored: StoredTraversal = {
      format: FORMAT,
      scanner: this.#scanner,
      key,
      trees,
      layout: lookupPaths(inputs.fileDirs).map((p) => [p, statStamp(p)]),
      traversal,
    };
    this.#learnt.set(this.#pathOf(key), stored);
  }

  /** Writes the traversals remembered since the last save, each atomically (without fsync: cheap to lose). */
  async save(): Promise<void> {
    for (const [path, stored] of this.#learnt)
      await writeFileAtomic(path, JSON.stringify(stored), { fsync: false });
    this.#learnt.clear();
  }

  #pathOf(key: string): string {
    return join(this.#dir, `${key}.json`);
  }
}

function keyOf(roots: ReadonlyArray<readonly [string, string]>): string {
  const lines = roots.map(([path, dir]) => `${path}\0${dir}`).sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

/**
 * Where Node and the resolver look from files in `dirs`: `node_modules` in each directory above
 * them (not inside a `node_modules` name itself), the `@scope` directories in those that exist,
 * and `tsconfig.json` in each directory above them that no package tree covers.
 */
function lookupPaths(dirs: readonly string[]): string[] {
  const ancestors = lookupAncestors(dirs);
  const paths = nodeModulesLookups(ancestors);
  for (const dir of ancestors)
    if (
      !dir.includes(`${sep}node_modules${sep}`) &&
      basename(dir) !== "node_modules"
    )
      paths.push(join(dir, "tsconfig.json"));
  return paths.sort();
}
