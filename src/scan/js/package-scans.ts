// What the scan found in installed packages' files, remembered per package under its strict tree
// stamp: a rebuild parses only the files of packages that changed since they were read.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { isNotFound, settleAll, writeFileAtomic } from "../../core/light.js";
import type { PackageTrees } from "../npm/package-tree.js";
import type { FoundImports } from "./find-imports.js";
import { PackageClosures } from "./package-closure.js";
import { PackageTraversals } from "./package-traversals.js";

/** The stored form; another version is read as empty. */
const FORMAT = "envpack-package-scans/2";

/** A file's imports, or null when it has no text to parse (binary, too large). */
type Found = FoundImports | null;

/** The stored form of an app file's imports, by its content; another version is read as absent. */
const APP_FORMAT = "envpack-app-imports/1";

interface StoredAppImports {
  format: string;
  scanner: string;
  found: FoundImports;
}

/** What a store file holds: the packages a scan of some entries read. */
interface StoredScans {
  format: string;
  /** The scanner that found the imports (envpack's version): another one reads files again. */
  scanner: string;
  packages: StoredPackage[];
}

interface StoredPackage {
  dir: string;
  /** The package's strict tree stamp when its files were read. */
  stamp: string;
  files: Record<string, Found>;
}

/**
 * The store file of the package scans of `entries` (absolute paths) under `scanDir` (e.g.
 * `<cacheDir>/scan`): one file per set of entries, as the scan's remembered walks.
 */
export function packageScansFile(
  scanDir: string,
  entries: readonly string[],
): string {
  const key = createHash("sha256")
    .update([...entries].sort().join("\0"))
    .digest("hex");
  return join(scanDir, "npm", `${key}.scans`);
}

/**
 * The import sites of installed packages' files, kept in one file per set of entries (see
 * {@link packageScansFile}), read once when the scan first reads a package and written once,
 * whole, when it learnt anything. Safe by construction: a package's entries are used only while
 * its strict tree stamp, taken before any of its files is read, is the one they were found
 * under; any file of it edited, added or removed changes that stamp and its files are read
 * again. A lost or unreadable store costs only parsing.
 */
export class PackageScans {
  readonly #file: string;
  readonly #scanner: string;
  readonly #trees: PackageTrees;
  /** The store file's packages by directory, read on first use. */
  #stored: Map<string, StoredPackage> | undefined;
  /** The packages this scan read: remembered entries, or fresh ones it fills in. */
  readonly #packages = new Map<string, StoredPackage>();
  #learnt = false;
  /** App files' imports found by this build, by store path, to write on save. */
  readonly #appLearnt = new Map<string, FoundImports>();
  /** The package side of scans, by the package files the app reaches (a sibling store). */
  readonly traversals: PackageTraversals;
  /** The packages' dependency closures, by where they start (a sibling store). */
  readonly closures: PackageClosures;

  /**
   * @param file the store file (see packageScansFile); sibling stores live in its directory's parent
   * @param scanner the scanner's identity (envpack's version): entries of another are not used
   * @param trees the build's tree walks (see packageTrees), shared with its other stamps
   */
  constructor(file: string, scanner: string, trees: PackageTrees) {
    this.#file = file;
    this.#scanner = scanner;
    this.#trees = trees;
    const scanDir = dirname(dirname(file));
    this.traversals = new PackageTraversals(
      join(scanDir, "npm-traversals"),
      scanner,
      trees,
    );
    this.closures = new PackageClosures(
      join(scanDir, "npm-closures"),
      scanner,
      trees,
    );
  }

  /**
   * The imports of an app file's text (`sha256` of its bytes, parsed as `ext`): remembered by
   * content in a sibling store, or found by `find` and remembered on save.
   */
  appImports(
    sha256: string,
    ext: string,
    find: () => FoundImports,
  ): FoundImports {
    const path = join(
      dirname(dirname(this.#file)),
      "app",
      `${sha256}${ext.replace(/[^.a-z]/g, "")}.json`,
    );
    let stored: StoredAppImports | null = null;
    try {
      stored = JSON.parse(readFileSync(path, "utf8")) as StoredAppImports;
    } catch (error) {
      if (!isNotFound(error) && !(error instanceof SyntaxError)) throw error;
    }
    if (
      stored !== null &&
      typeof stored === "object" &&
      stored.format === APP_FORMAT &&
      stored.scanner === this.#scanner &&
      typeof stored.found === "object" &&
      stored.found !== null &&
      Array.isArray(stored.found.sites)
    )
      return stored.found;
    const found = find();
    this.#appLearnt.set(path, found);
    return found;
  }

  /**
   * The imports of `file` (a real path inside the package at real `packageDir`): remembered, or
   * found by `find` and remembered.
   */
  async imports(
    packageDir: string,
    file: string,
    find: () => Promise<Found>,
  ): Promise<Found> {
    let loaded = this.#packages.get(packageDir);
    if (loaded === undefined) {
      loaded = this.#load(packageDir);
      this.#packages.set(packageDir, loaded);
    }
    const rel = relative(packageDir, file).split(sep).join("/");
    const known = loaded.files[rel];
    if (known !== undefined) return known;
    const found = await find();
    loaded.files[rel] = found;
    this.#learnt = true;
    return found;
  }

  /**
   * Writes what this build learnt (app files' imports, traversals, closures, and the store file
   * when a package learnt a file: this scan's packages and the ones it did not read, as they
   * were), each atomically (without fsync: cheap to lose), all at once: every write has ended
   * when this returns or throws.
   */
  async save(): Promise<void> {
    const writes = [...this.#appLearnt].map(([path, found]) => {
      const stored: StoredAppImports = {
        format: APP_FORMAT,
        scanner: this.#scanner,
        found,
      };
      return writeFileAtomic(path, JSON.stringify(stored), { fsync: false });
    });
    this.#appLearnt.clear();
    writes.push(this.traversals.save(), this.closures.save());
    if (this.#learnt) {
      const packages = new Map(this.#stored);
      for (const [dir, stored] of this.#packages) packages.set(dir, stored);
      const stored: StoredScans = {
        format: FORMAT,
        scanner: this.#scanner,
        packages: [...packages.values()],
      };
      writes.push(
        writeFileAtomic(this.#file, JSON.stringify(stored), { fsync: false }),
      );
      this.#learnt = false;
    }
    await settleAll(writes);
  }

  #load(dir: string): StoredPackage {
    // Stamped before any file of the package is read: an edit after this is seen next time.
    const stamp = this.#trees(dir).strict;
    this.#stored ??= this.#read();
    const stored = this.#stored.get(dir);
    return stored?.stamp === stamp ? stored : { dir, stamp, files: {} };
  }

  /** The store file's usable packages; none when it is absent, damaged or of another scanner. */
  #read(): Map<string, StoredPackage> {
    const packages = new Map<string, StoredPackage>();
    let stored: Partial<StoredScans> | null;
    try {
      // Synchronous: one file, read once, when the scan first reads a package.
      stored = JSON.parse(readFileSync(this.#file, "utf8")) as typeof stored;
    } catch (error) {
      if (isNotFound(error) || error instanceof SyntaxError) return packages;
      throw error;
    }
    if (
      stored === null ||
      typeof stored !== "object" ||
      stored.format !== FORMAT ||
      stored.scanner !== this.#scanner ||
      !Array.isArray(stored.packages)
    )
      return packages;
    for (const entry of stored.packages as unknown[]) {
      const pkg = entry as Partial<StoredPackage> | null;
      if (
        typeof pkg?.dir === "string" &&
        typeof pkg.stamp === "string" &&
        typeof pkg.files === "object" &&
        pkg.files !== null
      )
        packages.set(pkg.dir, pkg as StoredPackage);
    }
    return packages;
  }
}
