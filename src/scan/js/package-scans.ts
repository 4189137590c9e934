// What the scan found in installed packages' files, remembered per package under its strict tree
// stamp: a rebuild parses only the files of packages that changed since they were read.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { isNotFound, writeFileAtomic } from "../../core/light.js";
import type { PackageTrees } from "../npm/package-tree.js";
import type { FoundImports } from "./find-imports.js";
import { PackageClosures } from "./package-closure.js";
import { PackageTraversals } from "./package-traversals.js";

/** The stored form; another version is read as empty. */
const FORMAT = "envpack-package-scan/1";

/** A file's imports, or null when it has no text to parse (binary, too large). */
type Found = FoundImports | null;

/** The stored form of an app file's imports, by its content; another version is read as absent. */
const APP_FORMAT = "envpack-app-imports/1";

interface StoredAppImports {
  format: string;
  scanner: string;
  found: FoundImports;
}

interface StoredPackage {
  format: string;
  /** The scanner that found the imports (envpack's version): another one reads files again. */
  scanner: string;
  dir: string;
  /** The package's strict tree stamp when its files were read. */
  stamp: string;
  files: Record<string, Found>;
}

interface LoadedPackage {
  stored: StoredPackage;
  learnt: boolean;
}

/**
 * The import sites of installed packages' files, kept in `dir` (one JSON file per package
 * directory). Safe by construction: a package's entries are used only while its strict tree
 * stamp, taken before any of its files is read, is the one they were found under; any file of
 * it edited, added or removed changes that stamp and its files are read again. A lost or
 * unreadable store costs only parsing.
 */
export class PackageScans {
  readonly #dir: string;
  readonly #scanner: string;
  readonly #trees: PackageTrees;
  readonly #packages = new Map<string, Promise<LoadedPackage>>();
  /** App files' imports found by this build, by store path, to write on save. */
  readonly #appLearnt = new Map<string, FoundImports>();
  /** The package side of scans, by the package files the app reaches (a sibling store). */
  readonly traversals: PackageTraversals;
  /** The packages' dependency closures, by where they start (a sibling store). */
  readonly closures: PackageClosures;

  /**
   * @param dir where the store lives (e.g. `<cacheDir>/scan/npm`)
   * @param scanner the scanner's identity (envpack's version): entries of another are not used
   * @param trees the build's tree walks (see packageTrees), shared with its other stamps
   */
  constructor(dir: string, scanner: string, trees: PackageTrees) {
    this.#dir = dir;
    this.#scanner = scanner;
    this.#trees = trees;
    this.traversals = new PackageTraversals(
      join(dirname(dir), "npm-traversals"),
      scanner,
      trees,
    );
    this.closures = new PackageClosures(
      join(dirname(dir), "npm-closures"),
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
      dirname(this.#dir),
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
    let loading = this.#packages.get(packageDir);
    if (loading === undefined) {
      loading = this.#load(packageDir);
      this.#packages.set(packageDir, loading);
    }
    const loaded = await loading;
    const rel = relative(packageDir, file).split(sep).join("/");
    const known = loaded.stored.files[rel];
    if (known !== undefined) return known;
    const found = await find();
    loaded.stored.files[rel] = found;
    loaded.learnt = true;
    return found;
  }

  /**
   * Writes what this build learnt (app files' imports, packages that learnt a file, traversals,
   * closures), each atomically (without fsync: cheap to lose).
   */
  async save(): Promise<void> {
    for (const [path, found] of this.#appLearnt) {
      const stored: StoredAppImports = {
        format: APP_FORMAT,
        scanner: this.#scanner,
        found,
      };
      await writeFileAtomic(path, JSON.stringify(stored), { fsync: false });
    }
    this.#appLearnt.clear();
    await this.traversals.save();
    await this.closures.save();
    for (const loading of this.#packages.values()) {
      const { stored, learnt } = await loading;
      if (!learnt) continue;
      await writeFileAtomic(this.#pathOf(stored.dir), JSON.stringify(stored), {
        fsync: false,
      });
    }
  }

  async #load(dir: string): Promise<LoadedPackage> {
    // Stamped before any file of the package is read: an edit after this is seen next time.
    const stamp = this.#trees(dir).strict;
    const fresh: StoredPackage = {
      format: FORMAT,
      scanner: this.#scanner,
      dir,
      stamp,
      files: {},
    };
    let stored: StoredPackage;
    try {
      stored = JSON.parse(
        await readFile(this.#pathOf(dir), "utf8"),
      ) as StoredPackage;
    } catch (error) {
      if (isNotFound(error) || error instanceof SyntaxError)
        return { stored: fresh, learnt: false };
      throw error;
    }
    const usable =
      stored.format === FORMAT &&
      stored.scanner === this.#scanner &&
      stored.dir === dir &&
      stored.stamp === stamp &&
      typeof stored.files === "object" &&
      stored.files !== null;
    return { stored: usable ? stored : fresh, learnt: false };
  }

  #pathOf(dir: string): string {
    return join(
      this.#dir,
      `${createHash("sha256").update(dir).digest("hex")}.json`,
    );
  }
}
