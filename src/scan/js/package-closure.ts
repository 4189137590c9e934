// The npm packages a scan ships: the packages it reached, closed over their declared run-time
// dependencies that are installed; remembered per starting set, so that a rebuild reaching the
// same packages reads no package.json and probes no node_modules again.

import { createHash } from "node:crypto";
import { join } from "node:path";
import { writeFileAtomic, type UnresolvedEntry } from "../../core/light.js";
import { lookupAncestors, nodeModulesLookups } from "../npm/lookup-dirs.js";
import type {
  InstalledPackage,
  PackageCatalog,
} from "../npm/package-catalog.js";
import type { PackageTrees } from "../npm/package-tree.js";
import {
  layoutHolds,
  readStored,
  statStamp,
  strictStampOf,
} from "./stored-stamps.js";

/** The stored form; another is read as absent. */
const FORMAT = "envpack-package-closure/1";

/** A package of the closure with its dependencies (real directory → needed only optionally). */
export interface ClosureEntry {
  pkg: InstalledPackage;
  deps: Map<string, boolean>;
  reason: "import" | "dependency" | "declared" | "traced" | "included";
}

/** Where a closure starts: everything its answer depends on besides the files it reads. */
export interface ClosureStart {
  /** Package directories to take, the last first. */
  pending: readonly string[];
  /** Package directories the app's own files import. */
  imported: ReadonlySet<string>;
  /** Package directory → the package directories its files import. */
  edges: ReadonlyMap<string, ReadonlySet<string>>;
  /** Linked package directories outside node_modules. */
  linkDirs: ReadonlySet<string>;
}

/** What closing over dependencies found. */
export interface DependencyClosure {
  /** By real directory, in the order taken. */
  packages: Map<string, ClosureEntry>;
  /** Directories taken that hold no usable package.json. */
  absent: string[];
  /** Declared dependencies that are not installed (neither optional nor peer). */
  unresolved: Array<UnresolvedEntry & { packageDir: string }>;
  /** Links through which dependencies were found (link → real directory), in the order found. */
  links: Array<[link: string, real: string]>;
}

/**
 * Closes `start.pending` over declared dependencies as Node finds them from each package's
 * directory. Reads through `catalog` (its package metadata and links).
 */
export async function closeOverDependencies(
  catalog: PackageCatalog,
  start: ClosureStart,
): Promise<DependencyClosure> {
  const linksBefore = new Set(catalog.links.keys());
  const packages = new Map<string, ClosureEntry>();
  const absent: string[] = [];
  const unresolved: DependencyClosure["unresolved"] = [];
  const pending = [...start.pending];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    if (packages.has(dir) || absent.includes(dir)) continue;
    const pkg = await catalog.read(dir, start.linkDirs.has(dir));
    if (pkg === null) {
      absent.push(dir);
      continue;
    }
    const deps = new Map(
      [...(start.edges.get(dir) ?? [])].map((d) => [d, false]),
    );
    for (const dep of pkg.dependencies) {
      const depDir = await catalog.findInstalled(dir, dep.name);
      if (depDir === null) {
        if (!dep.optional && !dep.peer) {
          unresolved.push({
            specifier: dep.name,
            file: join(dir, "package.json"),
            line: 1,
            reason: "not-installed",
            message: `${pkg.name}@${pkg.version} depends on ${dep.name}, which is not installed`,
            packageDir: dir,
          });
        }
        continue;
      }
      deps.set(depDir, (deps.get(depDir) ?? true) && dep.optional);
      pending.push(depDir);
    }
    deps.delete(dir);
    packages.set(dir, {
      pkg,
      deps,
      reason: start.imported.has(dir) ? "import" : "dependency",
    });
  }
  const links = [...catalog.links].filter(([link]) => !linksBefore.has(link));
  return { packages, absent, unresolved, links };
}

interface StoredClosure {
  format: string;
  scanner: string;
  key: string;
  /** Each directory taken → its strict tree stamp (its package.json and binding.gyp are in it). */
  trees: Array<[dir: string, strict: string]>;
  /** Each place a dependency was looked up (`node_modules` and scopes above a package) → stamp. */
  layout: Array<[path: string, stamp: string]>;
  packages: Array<
    [
      dir: string,
      pkg: InstalledPackage,
      deps: Array<[dir: string, optional: boolean]>,
      reason: ClosureEntry["reason"],
    ]
  >;
  absent: string[];
  unresolved: DependencyClosure["unresolved"];
  links: DependencyClosure["links"];
}

/**
 * Dependency closures kept in `dir`, one file per {@link ClosureStart}. A remembered closure is
 * used only while every directory it took has the strict tree stamp it had (an edited
 * package.json changes it) and every place a dependency was looked up from those directories
 * has the same stats (a package installed, removed or replaced there changes them), as
 * PackageTraversals checks its traversals.
 */
export class PackageClosures {
  readonly #dir: string;
  readonly #scanner: string;
  readonly #trees: PackageTrees;
  /** Closures found by this build, by store path, to write on save. */
  readonly #learnt = new Map<string, string>();

  constructor(dir: string, scanner: string, trees: PackageTrees) {
    this.#dir = dir;
    this.#scanner = scanner;
    this.#trees = trees;
  }

  /** The closure remembered for `start`, if still valid. */
  recall(start: ClosureStart): DependencyClosure | null {
    const key = keyOf(start);
    const stored = readStored<StoredClosure>(
      this.#pathOf(key),
      { format: FORMAT, scanner: this.#scanner, key },
      ["trees", "layout", "packages", "absent", "unresolved", "links"],
    );
    if (stored === null || !layoutHolds(stored.layout)) return null;
    for (const [dir, strict] of stored.trees)
      if (strictStampOf(this.#trees, dir) !== strict) return null;
    return {
      packages: new Map(
        stored.packages.map(([dir, pkg, deps, reason]) => [
          dir,
          { pkg, deps: new Map(deps), reason },
        ]),
      ),
      absent: stored.absent,
      unresolved: stored.unresolved,
      links: stored.links,
    };
  }

  /** Remembers `closure` for `start` (written by {@link save}) with the stamps it depends on now. */
  remember(start: ClosureStart, closure: DependencyClosure): void {
    const key = keyOf(start);
    const taken = [...closure.packages.keys(), ...closure.absent];
    const trees: StoredClosure["trees"] = [];
    for (const dir of taken) {
      const strict = strictStampOf(this.#trees, dir);
      // A directory gone since it was read: nothing stable to remember.
      if (strict === "missing") return;
      trees.push([dir, strict]);
    }
    const stored: StoredClosure = {
      format: FORMAT,
      scanner: this.#scanner,
      key,
      trees,
      layout: nodeModulesLookups(lookupAncestors(closure.packages.keys()))
        .sort()
        .map((p) => [p, statStamp(p)]),
      packages: [...closure.packages].map(([dir, { pkg, deps, reason }]) => [
        dir,
        pkg,
        [...deps],
        reason,
      ]),
      absent: closure.absent,
      unresolved: closure.unresolved,
      links: closure.links,
    };
    // Serialised now: the scan goes on to change entries' reasons.
    this.#learnt.set(this.#pathOf(key), JSON.stringify(stored));
  }

  /** Writes the closures remembered since the last save, each atomically (without fsync: cheap to lose). */
  async save(): Promise<void> {
    for (const [path, text] of this.#learnt)
      await writeFileAtomic(path, text, { fsync: false });
    this.#learnt.clear();
  }

  #pathOf(key: string): string {
    return join(this.#dir, `${key}.json`);
  }
}

/** The store key of a start: every input in the order the closure takes it. */
function keyOf(start: ClosureStart): string {
  const text = JSON.stringify([
    start.pending,
    [...start.imported].sort(),
    [...start.edges].map(([dir, targets]) => [dir, [...targets]]),
    [...start.linkDirs].sort(),
  ]);
  return createHash("sha256").update(text).digest("hex");
}
