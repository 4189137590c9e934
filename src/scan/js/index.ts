// Scans JS/TS entries: follows the app's own files, identifies the npm packages they reach, and
// closes the package set over the packages' own run-time dependencies.

import { readFileSync, realpathSync, statSync } from "node:fs";
import { readFile, readdir, realpath, stat } from "node:fs/promises";
import { basename, dirname, extname, join, resolve, sep } from "node:path";
import {
  InputError,
  isNotFound,
  compare,
  type AppFile,
  type ImportRecord,
  type PackageEntry,
  type UnresolvedEntry,
} from "../../core/light.js";
import {
  PackageCatalog,
  packageTreeDigest,
  type InstalledPackage,
} from "../npm/package-catalog.js";
import {
  JS_EXTENSIONS,
  appFile,
  commonDirectory,
  readSource,
  readSourceText,
  toPosixRelative,
  type ScanResult,
  type ScannerOptions,
} from "../scan-result.js";
import { assetDirectoryFiles } from "../asset-directory.js";
import { globPattern, listFiles } from "../file-globs.js";
import {
  findImports,
  type FoundImports,
  type ImportSite,
} from "./find-imports.js";
import { hostRuntime } from "./host-runtime.js";
import { closeOverDependencies, type ClosureEntry } from "./package-closure.js";
import type { PackageScans } from "./package-scans.js";
import type { PackageTraversal } from "./package-traversals.js";
import {
  SpecifierResolver,
  packageNameOf,
  type Resolution,
} from "./resolve-specifier.js";

const PARSED = new Set(JS_EXTENSIONS);
/** Bounded fan-out for file reads. */
const CONCURRENCY = 16;
/** A computed `import()` whose static directory holds more files than this is reported, not expanded. */
const MAX_PATTERN_FILES = 1000;

/** Where a file sits: the app's own code, or inside a package (by its real directory). */
type Owner = { type: "app" } | { type: "package"; dir: string };

interface PendingFile {
  path: string;
  owner: Owner;
}

/** Options of {@link scanJs}. */
export interface JsScannerOptions extends ScannerOptions {
  /** Remembered imports of package files (a build's); without, every package file is parsed. */
  packageScans?: PackageScans | undefined;
}

/** Scans JS/TS entries and the packages they reach. */
export async function scanJs(options: JsScannerOptions): Promise<ScanResult> {
  const scanner = new JsScanner(options);
  return scanner.run();
}

class JsScanner {
  readonly #options: JsScannerOptions;
  readonly #resolver = new SpecifierResolver();
  /** Relative specifiers this scan resolved to a file, by importer directory (see #resolve). */
  readonly #resolvedRelative = new Map<string, Resolution>();
  readonly #catalog = new PackageCatalog();
  /** Real path → owner, for every file queued so far. */
  readonly #seen = new Map<string, Owner>();
  readonly #queue: PendingFile[] = [];
  readonly #appFiles = new Map<string, AppFile>();
  /** Package directories the app itself (not another package) reached. */
  readonly #imported = new Set<string>();
  /** Package directories the app's package.json declares (dependencies and optional ones), by real path → optional. */
  readonly #declared = new Map<string, boolean>();
  /** Package directories only a traced run loaded. */
  readonly #traced = new Set<string>();
  /** Package directories named by an include. */
  readonly #included = new Set<string>();
  /** Package directories reached from inside other packages, by importer. */
  readonly #packageEdges = new Map<string, Set<string>>();
  readonly #optionalOnly = new Map<string, boolean>();
  readonly #linkDirs = new Set<string>();
  /** Directories of app files, for finding the package.json files that govern them. */
  readonly #manifestDirs: string[] = [];
  readonly #imports: Array<
    Omit<ImportRecord, "resolved" | "target"> & { target: ResolvedTarget }
  > = [];
  readonly #unresolved: Array<
    Omit<UnresolvedEntry, "file"> & { file: string; packageDir?: string }
  > = [];
  #parsed = 0;
  /** Real package directory → the path it is placed at (see #placePackages). */
  readonly #placed = new Map<string, string>();
  /**
   * Package files the app reaches, held back until the app's own files are all read: the
   * package side then starts from a known set (see #followPackages).
   */
  readonly #packageRoots: PendingFile[] = [];
  #packagePhase = false;
  /** An app file was queued from inside a package: that traversal is not remembered. */
  #appFromPackages = false;

  constructor(options: JsScannerOptions) {
    this.#options = options;
  }

  async run(): Promise<ScanResult> {
    const started = performance.now();
    for (const entry of this.#options.entries) {
      const real = realEntry(entry);
      this.#enqueue(real, { type: "app" }, "entry");
    }
    await this.#drain();
    if (this.#options.traced !== undefined) {
      await this.#addTraced(this.#options.traced);
      await this.#drain();
    }
    await this.#addIncluded();
    await this.#drain();
    await this.#followPackages();
    await this.#addAppPackageJsons();
    if (this.#options.declared !== false) await this.#findDeclared();
    const packages = await this.#packages();
    this.#placePackages(packages);
    const root = this.#root(packages);
    const rel = (path: string) => toPosixRelative(root, this.#place(path));
    const result: ScanResult = {
      kind: "node",
      runtime: hostRuntime(),
      root,
      entries: await Promise.all(
        this.#options.entries.map(async (e) =>
          toPosixRelative(root, realEntry(e)),
        ),
      ),
      files: [...this.#appFiles.entries()]
        .map(([path, file]) => ({ ...file, path: toPosixRelative(root, path) }))
        .sort((a, b) => compare(a.path, b.path)),
      packages: await this.#packageEntries(packages, rel),
      imports: this.#imports
        .map(({ target, ...record }) => ({
          ...record,
          file: toPosixRelative(root, record.file),
          resolved: describeTarget(target, rel),
          ...(target.type === "package" || target.type === "file"
            ? { target: rel(target.path) }
            : {}),
        }))
        .sort(byLocation),
      unresolved: await this.#unresolvedEntries(rel),
    };
    if (this.#options.traced !== undefined)
      result.trace = notLoaded(
        this.#options.traced,
        [...this.#appFiles.keys()],
        [...packages]
          .filter(
            ([dir, entry]) =>
              entry.reason !== "traced" && !this.#traced.has(dir),
          )
          .map(([dir]) => rel(dir)),
        (path) => toPosixRelative(root, path),
      );
    this.#options.onEvent?.({
      type: "scan:done",
      files: this.#parsed,
      packages: result.packages.length,
      unresolved: result.unresolved.length,
      durationMs: Math.round(performance.now() - started),
    });
    return result;
  }

  #enqueue(
    path: string,
    owner: Owner,
    role: AppFile["role"],
    reason?: AppFile["reason"],
  ): void {
    if (this.#seen.has(path)) return;
    this.#seen.set(path, owner);
    if (owner.type === "package" && !this.#packagePhase) {
      this.#packageRoots.push({ path, owner });
      return;
    }
    if (owner.type === "app" && this.#packagePhase)
      this.#appFromPackages = true;
    if (owner.type === "app") {
      this.#appFiles.set(path, {
        path,
        sha256: "",
        size: 0,
        role,
        ...(reason ? { reason } : {}),
      });
      this.#manifestDirs.push(dirname(path));
    }
    this.#queue.push({ path, owner });
  }

  /**
   * The package.json nearest to each app file decides how Node loads it (`type`, `imports`,
   * self-references), so it is part of the app.
   */
  async #addAppPackageJsons(): Promise<void> {
    const found = new Set<string>();
    const checked = new Map<string, Promise<string | null>>();
    const nearest = (dir: string): Promise<string | null> => {
      let pending = checked.get(dir);
      if (pending === undefined) {
        pending = (async () => {
          const candidate = join(dir, "package.json");
          try {
            if (statSync(candidate).isFile()) return candidate;
          } catch (error) {
            if (!isNotFound(error)) throw error;
          }
          const parent = dirname(dir);
          return parent === dir ? null : nearest(parent);
        })();
        checked.set(dir, pending);
      }
      return pending;
    };
    for (const dir of new Set(this.#manifestDirs)) {
      const path = await nearest(dir);
      if (path !== null && !this.#appFiles.has(path)) found.add(path);
    }
    for (const path of found)
      this.#appFiles.set(path, appFile(path, await readSource(path), "json"));
  }

  /**
   * The packages the entries' own package.json declares as run-time dependencies: they ship
   * whether or not an import reaches them (plugins, drivers and transports are loaded by names
   * read from options). A declared package that is not installed is a finding.
   */
  async #findDeclared(): Promise<void> {
    const manifests = new Set<string>();
    for (const entry of this.#options.entries) {
      const path = await nearestPackageJson(dirname(realEntry(entry)));
      if (path !== null && this.#catalog.packageDirOf(path) === null)
        manifests.add(path);
    }
    for (const path of manifests) {
      const declared = await declaredDependencies(path);
      for (const dep of declared) {
        const dir = await this.#catalog.findInstalled(dirname(path), dep.name);
        if (dir === null) {
          if (!dep.optional) {
            this.#unresolved.push({
              specifier: dep.name,
              file: path,
              line: dep.line,
              reason: "not-installed",
              message: `${dep.name} is declared in dependencies but not installed`,
            });
          }
          continue;
        }
        this.#declared.set(
          dir,
          dep.optional && this.#declared.get(dir) !== false,
        );
      }
    }
  }

  /**
   * What a traced run loaded that the analysis did not reach: files of the app's project (the
   * directory of the entries' package.json, else of the entries) and installed packages.
   */
  async #addTraced(paths: string[]): Promise<void> {
    const { project } = await this.#project();
    for (const path of paths) {
      const packageDir = this.#catalog.packageDirOf(path);
      if (packageDir !== null) {
        if ((await this.#catalog.read(packageDir)) !== null)
          this.#traced.add(packageDir);
        continue;
      }
      if (!path.startsWith(project + sep) || this.#seen.has(path)) continue;
      let info;
      try {
        info = await stat(path);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      if (info.isFile())
        this.#enqueue(path, { type: "app" }, roleOf(extname(path)), "traced");
    }
  }

  /** The app's project directory (its entry's package.json's, else the entries') and that package.json. */
  async #project(): Promise<{ project: string; manifest: string | null }> {
    const first = realEntry(this.#options.entries[0] as string);
    const found = await nearestPackageJson(dirname(first));
    const manifest =
      found !== null && this.#catalog.packageDirOf(found) === null
        ? found
        : null;
    const project =
      manifest !== null
        ? dirname(manifest)
        : commonDirectory(
            await Promise.all(this.#options.entries.map((e) => realpath(e))),
          );
    return { project, manifest };
  }

  /**
   * The includes of `envpack.include` in the project's package.json and of the options: an
   * installed package name ships with its closure, a glob adds the app files it matches.
   * @throws InputError ENVPACK_INPUT_INCLUDE_MISSING naming an include that matches nothing
   */
  async #addIncluded(): Promise<void> {
    const { project, manifest } = await this.#project();
    const includes = [
      ...(manifest === null ? [] : await packageJsonIncludes(manifest)),
      ...(this.#options.include ?? []),
    ];
    let files: string[] | undefined;
    for (const include of includes) {
      const name = packageNameOf(include);
      if (name === include) {
        const dir = await this.#catalog.findInstalled(project, include);
        if (dir !== null) {
          this.#included.add(dir);
          continue;
        }
      }
      files ??= (await listFiles(project, Infinity)).map((f) =>
        toPosixRelative(project, f),
      );
      const pattern = globPattern(include.replace(/^\.\//, ""));
      const matched = files.filter((f) => pattern.test(f));
      if (matched.length === 0) {
        throw new InputError(
          "ENVPACK_INPUT_INCLUDE_MISSING",
          `include ${JSON.stringify(include)} names no installed package and no file under ${project}`,
          {
            hint: "Install the package, or fix the glob (relative to the directory of the app's package.json).",
            details: { include, project },
          },
        );
      }
      for (const file of matched) {
        const path = await realpath(join(project, ...file.split("/")));
        this.#enqueue(path, { type: "app" }, roleOf(extname(path)), "included");
      }
    }
  }

  async #drain(): Promise<void> {
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      for (
        let next = this.#queue.shift();
        next !== undefined;
        next = this.#queue.shift()
      ) {
        this.#options.signal?.throwIfAborted();
        await this.#visit(next);
      }
    });
    await Promise.all(workers);
    // A worker may have exited while another was still adding work.
    if (this.#queue.length > 0) await this.#drain();
  }

  async #visit({ path, owner }: PendingFile): Promise<void> {
    const ext = extname(path);
    if (
      owner.type === "package" &&
      (!PARSED.has(ext) || this.#options.parsePackages === false)
    )
      return;
    const found =
      owner.type === "app"
        ? await this.#readAppFile(path, ext)
        : await this.#packageImports(owner.dir, path, ext);
    if (found === null) return;
    this.#parsed++;
    this.#options.onEvent?.({
      type: "scan:file",
      file: path,
      count: this.#parsed,
    });
    if (found.problem) return;
    for (const site of found.sites) await this.#follow(path, owner, site);
  }

  /** Reads an app file into its manifest entry (with its problem, if any) and finds its imports. */
  async #readAppFile(path: string, ext: string): Promise<FoundImports | null> {
    const source = await readSource(path, true);
    const current = this.#appFiles.get(path);
    const role = current?.role === "entry" ? "entry" : roleOf(ext);
    const reason = current?.reason ? { reason: current.reason } : {};
    this.#appFiles.set(path, { ...appFile(path, source, role), ...reason });
    const text = source.text;
    if (!PARSED.has(ext) || text === undefined) return null;
    const scans = this.#options.packageScans;
    const found =
      scans === undefined
        ? findImports(text, ext, false)
        : scans.appImports(source.sha256, ext, () =>
            findImports(text, ext, false),
          );
    if (found.problem)
      this.#appFiles.set(path, {
        ...appFile(path, { ...source, problem: found.problem }, roleOf(ext)),
        ...reason,
      });
    return found;
  }

  /**
   * Follows the imports inside packages from the package files the app reaches: replayed from
   * the build's remembered traversal for the same files while it is valid (see
   * PackageTraversals), else followed file by file and remembered.
   */
  async #followPackages(): Promise<void> {
    const roots = this.#packageRoots.splice(0);
    const memo =
      this.#options.parsePackages === false
        ? undefined
        : this.#options.packageScans?.traversals;
    const keys = roots.map(
      ({ path, owner }) =>
        [path, owner.type === "package" ? owner.dir : ""] as const,
    );
    const remembered = roots.length === 0 ? null : (memo?.recall(keys) ?? null);
    if (remembered !== null) return this.#replay(remembered);
    const before = {
      unresolved: this.#unresolved.length,
      parsed: this.#parsed,
      linkDirs: new Set(this.#linkDirs),
      links: new Set(this.#catalog.links.keys()),
    };
    this.#packagePhase = true;
    this.#queue.push(...roots);
    try {
      await this.#drain();
    } finally {
      this.#packagePhase = false;
    }
    if (memo === undefined || roots.length === 0 || this.#appFromPackages)
      return;
    const packageDirs = new Set<string>();
    const fileDirs = new Set<string>();
    for (const [path, owner] of this.#seen) {
      if (owner.type !== "package") continue;
      packageDirs.add(owner.dir);
      fileDirs.add(dirname(path));
    }
    const edges = [...this.#packageEdges].map(
      ([dir, targets]): [string, string[]] => [dir, [...targets]],
    );
    for (const [, targets] of edges)
      for (const dir of targets) packageDirs.add(dir);
    const linkDirs = [...this.#linkDirs].filter((d) => !before.linkDirs.has(d));
    for (const dir of linkDirs) packageDirs.add(dir);
    memo.remember(
      keys,
      {
        parsed: this.#parsed - before.parsed,
        edges,
        unresolved: this.#unresolved.slice(before.unresolved),
        linkDirs,
        links: [...this.#catalog.links].filter(
          ([link]) => !before.links.has(link),
        ),
      },
      { packageDirs: [...packageDirs], fileDirs: [...fileDirs] },
    );
  }

  /** What a remembered traversal found, as if the package files were followed again. */
  async #replay(traversal: PackageTraversal): Promise<void> {
    this.#parsed += traversal.parsed;
    for (const [dir, targets] of traversal.edges) {
      let edges = this.#packageEdges.get(dir);
      if (edges === undefined) this.#packageEdges.set(dir, (edges = new Set()));
      for (const target of targets) edges.add(target);
    }
    this.#unresolved.push(...traversal.unresolved);
    for (const [link, real] of traversal.links)
      this.#catalog.addLink(link, real);
    for (const dir of traversal.linkDirs) {
      this.#linkDirs.add(dir);
      await this.#catalog.read(dir, true);
    }
  }

  /** The imports of a package's file: remembered by the build's package scans, or read now. */
  async #packageImports(
    packageDir: string,
    path: string,
    ext: string,
  ): Promise<FoundImports | null> {
    const read = async (): Promise<FoundImports | null> => {
      const text = await readSourceText(path);
      return text === undefined ? null : findImports(text, ext, true);
    };
    const scans = this.#options.packageScans;
    return scans === undefined ? read() : scans.imports(packageDir, path, read);
  }

  async #follow(from: string, owner: Owner, site: ImportSite): Promise<void> {
    const isApp = owner.type === "app";
    const { target } = site;
    const specifier =
      target.type === "literal" ? target.specifier : target.text;
    const record = (resolved: ResolvedTarget) => {
      if (isApp && site.kind !== "asset") {
        this.#imports.push({
          specifier,
          file: from,
          line: site.line,
          kind: site.kind,
          target: resolved,
          ...(site.optional ? { optional: true } : {}),
        });
      }
    };
    const miss = (reason: UnresolvedEntry["reason"], message: string) => {
      record({ type: "unresolved" });
      // Inside a package, a failure the package guards with try/catch is by design (the
      // loaders of per-platform builds try every platform's name); only the app's are findings.
      if (!isApp && site.optional) return;
      this.#unresolved.push({
        specifier,
        file: from,
        line: site.line,
        column: site.column,
        reason,
        message,
        ...(site.optional ? { optional: true } : {}),
        ...(owner.type === "package" ? { packageDir: owner.dir } : {}),
      });
    };

    if (target.type === "dynamic") {
      return miss(
        "dynamic-expression",
        `computed specifier ${target.text || "(empty)"} cannot be resolved statically`,
      );
    }
    if (target.type === "pattern")
      return this.#followPattern(from, owner, site, target, record, miss);

    if (site.kind === "asset") {
      const path = resolve(dirname(from), target.specifier);
      let info;
      try {
        info = await stat(path);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        return;
      }
      const real = await realpath(path);
      // A package ships whole: only the app's own assets need finding.
      if (info.isFile() && !isApp)
        await this.#reach(from, owner, real, null, site.optional);
      else if (info.isFile() && this.#catalog.packageDirOf(real) === null)
        this.#enqueue(real, owner, roleOf(extname(real)), "asset");
      else if (info.isDirectory() && isApp)
        await this.#addAssetDirectory(real, from, site.line);
      return;
    }
    const resolution = this.#resolve(
      from,
      target.specifier,
      site.kind === "require" || site.kind === "require-resolve",
    );
    if (resolution.type === "builtin") return record({ type: "builtin" });
    if (resolution.type === "unresolved")
      return miss(resolution.reason, resolution.message);
    const reached = await this.#reach(
      from,
      owner,
      resolution.path,
      packageNameOf(target.specifier),
      site.optional,
    );
    record(reached);
  }

  /**
   * Resolves a specifier of a site; a relative one once per importer directory: it names the
   * same file from every file there (tsconfig paths and package exports apply to bare
   * specifiers only), and the files of a package's directory import the same siblings (a first
   * scan of the realworld app: 1,642 resolutions, 885 distinct). Misses are not remembered.
   */
  #resolve(from: string, specifier: string, require: boolean): Resolution {
    if (!specifier.startsWith("./") && !specifier.startsWith("../"))
      return this.#resolver.resolve(from, specifier, require);
    const key = `${dirname(from)}\0${specifier}\0${require}`;
    const known = this.#resolvedRelative.get(key);
    if (known !== undefined) return known;
    const resolution = this.#resolver.resolve(from, specifier, require);
    if (resolution.type === "file") this.#resolvedRelative.set(key, resolution);
    return resolution;
  }

  /**
   * The files of a directory the app names from its own location (templates, locales, data):
   * each an app file with reason `asset`, unless the directory is past the budget; then none,
   * and a warning says how to include it.
   */
  async #addAssetDirectory(
    dir: string,
    from: string,
    line: number,
  ): Promise<void> {
    if (this.#catalog.packageDirOf(join(dir, "x")) !== null) return;
    const files = await assetDirectoryFiles(
      dir,
      { how: `named at ${from}:${line}`, file: from, line },
      this.#options.onEvent,
    );
    for (const file of files ?? [])
      this.#enqueue(
        await realpath(file),
        { type: "app" },
        roleOf(extname(file)),
        "asset",
      );
  }

  /** Queues a resolved file under the right owner and records package edges. */
  async #reach(
    from: string,
    owner: Owner,
    path: string,
    bareName: string | null,
    optional: boolean,
  ): Promise<ResolvedTarget> {
    const packageDir =
      this.#catalog.packageDirOf(path) ??
      (await this.#linkedPackageDir(path, bareName, from));
    if (packageDir === null) {
      this.#enqueue(path, { type: "app" }, roleOf(extname(path)));
      return { type: "file", path };
    }
    if (bareName !== null)
      await this.#catalog.findInstalled(dirname(from), bareName);
    if (owner.type === "app") {
      this.#imported.add(packageDir);
      this.#optionalOnly.set(
        packageDir,
        optional && this.#optionalOnly.get(packageDir) !== false,
      );
    } else if (owner.dir !== packageDir) {
      let edges = this.#packageEdges.get(owner.dir);
      if (edges === undefined)
        this.#packageEdges.set(owner.dir, (edges = new Set()));
      edges.add(packageDir);
    }
    this.#enqueue(path, { type: "package", dir: packageDir }, "module");
    return { type: "package", dir: packageDir, path };
  }

  /**
   * A file outside node_modules is a linked package's when it is inside a known link, or when a
   * bare specifier reached it (a workspace or `file:` link) and it is not the importer's own
   * package (a self-reference).
   */
  async #linkedPackageDir(
    path: string,
    bareName: string | null,
    from: string,
  ): Promise<string | null> {
    for (const dir of this.#linkDirs)
      if (path.startsWith(dir + sep)) return dir;
    if (bareName === null) return null;
    const dir = await findPackageRoot(path, bareName);
    if (dir === null || from.startsWith(dir + sep)) return null;
    this.#linkDirs.add(dir);
    await this.#catalog.read(dir, true);
    return dir;
  }

  async #followPattern(
    from: string,
    owner: Owner,
    site: ImportSite,
    target: Extract<ImportSite["target"], { type: "pattern" }>,
    record: (resolved: ResolvedTarget) => void,
    miss: (reason: UnresolvedEntry["reason"], message: string) => void,
  ): Promise<void> {
    const { prefix, suffix } = target;
    if (prefix.startsWith(".")) {
      const base = resolve(dirname(from), prefix);
      const dir = prefix.endsWith("/") ? base : dirname(base);
      const matches = (await listFiles(dir, MAX_PATTERN_FILES)).filter(
        (file) => {
          return (
            file.startsWith(base) &&
            file.endsWith(suffix) &&
            file.length >= base.length + suffix.length
          );
        },
      );
      if (matches.length === 0)
        return miss("dynamic-expression", `no file matches ${target.text}`);
      for (const file of matches)
        record(
          await this.#reach(
            from,
            owner,
            await realpath(file),
            null,
            site.optional,
          ),
        );
      return;
    }
    const name = packageNameOf(prefix);
    if (prefix === "" || prefix.startsWith("/")) {
      return miss(
        "dynamic-expression",
        `computed specifier ${target.text} names no file or package statically`,
      );
    }
    const fromDir = dirname(from);
    // A static part that names a whole package picks it (`lodash/${x}`); otherwise look for
    // installed packages matching the pattern (`@scope/pkg-${platform}-${arch}`).
    const names =
      name !== null && prefix.length > name.length
        ? [name]
        : await this.#catalog.findByPattern(
            fromDir,
            prefix,
            suffix.split("/")[0] ?? "",
          );
    let any = false;
    for (const pkgName of names) {
      const dir = await this.#catalog.findInstalled(fromDir, pkgName);
      if (dir === null) continue;
      any = true;
      const main = this.#resolver.resolve(
        from,
        pkgName,
        site.kind === "require" || site.kind === "require-resolve",
      );
      const path = main.type === "file" ? main.path : join(dir, "package.json");
      record(await this.#reach(from, owner, path, pkgName, site.optional));
    }
    if (!any)
      miss("dynamic-expression", `no installed package matches ${target.text}`);
  }

  /**
   * Every package reached, closed over declared dependencies that are installed: replayed from
   * the build's remembered closure for the same start while it is valid (see PackageClosures).
   */
  async #packages(): Promise<Map<string, ClosureEntry>> {
    const pending = [
      ...new Set([
        ...this.#imported,
        ...this.#packageEdges.keys(),
        ...[...this.#packageEdges.values()].flatMap((s) => [...s]),
      ]),
    ];
    // Declared packages come last: one the import graph reaches keeps its reason.
    const declared = [...this.#declared.keys()].reverse();
    pending.unshift(...declared);
    pending.unshift(...[...this.#traced].reverse());
    pending.unshift(...[...this.#included].reverse());
    const start = {
      pending,
      imported: this.#imported,
      edges: this.#packageEdges,
      linkDirs: this.#linkDirs,
    };
    const memo = this.#options.packageScans?.closures;
    let closure = memo?.recall(start) ?? null;
    if (closure === null) {
      closure = await closeOverDependencies(this.#catalog, start);
      memo?.remember(start, closure);
    } else {
      for (const [dir, { pkg }] of closure.packages)
        this.#catalog.remember(dir, pkg);
      for (const dir of closure.absent) this.#catalog.remember(dir, null);
      for (const [link, real] of closure.links)
        this.#catalog.addLink(link, real);
    }
    this.#unresolved.push(...closure.unresolved);
    const out = closure.packages;
    // A package is declared (or traced) only when nothing found before reaches it.
    const reached = closureOf(
      [
        ...this.#imported,
        ...this.#packageEdges.keys(),
        ...[...this.#packageEdges.values()].flatMap((s) => [...s]),
      ],
      out,
    );
    for (const [extra, reason] of [
      [this.#included.values(), "included"],
      [this.#declared.keys(), "declared"],
      [this.#traced.values(), "traced"],
    ] as const) {
      const roots = [...extra].filter((dir) => !reached.has(dir));
      for (const dir of roots) {
        const entry = out.get(dir);
        if (entry !== undefined) entry.reason = reason;
      }
      for (const dir of closureOf(roots, out)) reached.add(dir);
    }
    return out;
  }

  /**
   * Where each package sits as the app sees it. Normally its real directory; but when the real
   * directory is outside the project and Node reaches it through a link inside the project (a
   * node_modules symlinked to a shared store), the link's path — so that the manifest, and its
   * digest, do not depend on where the project or the store are on disk.
   */
  #placePackages(packages: Map<string, unknown>): void {
    const project = commonDirectory([...this.#appFiles.keys()]);
    const inside = (path: string) => path.startsWith(project + sep);
    const marker = `${sep}node_modules${sep}`;
    for (const dir of packages.keys()) {
      if (inside(dir) || this.#place(dir) !== dir) continue;
      for (const [link, real] of this.#catalog.links) {
        if (real !== dir || !inside(link)) continue;
        // A symlinked node_modules maps the whole store: its other packages follow the same link.
        const atLink = link.lastIndexOf(marker);
        const atReal = real.lastIndexOf(marker);
        if (
          atLink >= 0 &&
          atReal >= 0 &&
          link.slice(atLink) === real.slice(atReal)
        ) {
          this.#placed.set(real.slice(0, atReal), link.slice(0, atLink));
        } else {
          this.#placed.set(dir, link);
        }
        break;
      }
    }
  }

  /** An absolute path with a relocated package's real directory replaced by its placement. */
  #place(path: string): string {
    for (const [dir, at] of this.#placed) {
      if (path === dir || path.startsWith(dir + sep))
        return at + path.slice(dir.length);
    }
    return path;
  }

  #root(packages: Map<string, unknown>): string {
    const anchors = [
      ...this.#appFiles.keys(),
      ...[...packages.keys()].map((dir) =>
        join(this.#place(dir), "package.json"),
      ),
    ];
    let root = commonDirectory(anchors);
    // Keep package ids readable: the root is never inside a node_modules directory.
    const at = root.indexOf(`${sep}node_modules`);
    if (at >= 0) root = root.slice(0, at) || sep;
    return root;
  }

  async #packageEntries(
    packages: Map<string, ClosureEntry>,
    rel: (path: string) => string,
  ): Promise<PackageEntry[]> {
    const optional = this.#optionalClosure(packages);
    const linksTo = new Map<string, string[]>();
    for (const [link, dir] of this.#catalog.links) {
      if (!packages.has(dir) || this.#place(dir) === link) continue;
      const list = linksTo.get(dir) ?? [];
      list.push(link);
      linksTo.set(dir, list);
    }
    const entries = await Promise.all(
      [...packages.values()].map(
        async ({ pkg, deps, reason }): Promise<PackageEntry> => {
          const lock = await this.#catalog.lockfileIntegrity(
            this.#place(pkg.dir),
          );
          const integrity = lock ?? (await packageTreeDigest(pkg.dir));
          return {
            id: rel(pkg.dir),
            name: pkg.name,
            version: pkg.version,
            manager: "npm",
            path: rel(pkg.dir),
            integrity,
            integritySource: lock ? "lockfile" : "tree",
            dependencies: [...deps.keys()].map((d) => rel(d)).sort(compare),
            reason,
            ...(optional.has(pkg.dir) ? { optional: true } : {}),
            ...(pkg.link ? { link: true } : {}),
            ...(linksTo.has(pkg.dir)
              ? {
                  links: linksTo
                    .get(pkg.dir)!
                    .map((l) => rel(l))
                    .sort(compare),
                }
              : {}),
            ...(pkg.os ? { os: pkg.os } : {}),
            ...(pkg.cpu ? { cpu: pkg.cpu } : {}),
            ...(pkg.libc ? { libc: pkg.libc } : {}),
            ...(pkg.native ? { native: true } : {}),
          };
        },
      ),
    );
    return entries.sort((a, b) => compare(a.id, b.id));
  }

  /** Packages reachable only through optional imports or optional dependencies. */
  #optionalClosure(packages: Map<string, ClosureEntry>): Set<string> {
    const required = new Set<string>();
    const stack = [
      ...[...this.#imported].filter(
        (dir) => this.#optionalOnly.get(dir) === false,
      ),
      ...[...this.#declared].filter(([, opt]) => !opt).map(([dir]) => dir),
      ...this.#traced,
      ...this.#included,
    ];
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      if (required.has(dir)) continue;
      required.add(dir);
      const info = packages.get(dir);
      if (!info) continue;
      for (const [dep, isOptional] of info.deps)
        if (!isOptional) stack.push(dep);
    }
    return new Set([...packages.keys()].filter((dir) => !required.has(dir)));
  }

  async #unresolvedEntries(
    rel: (path: string) => string,
  ): Promise<UnresolvedEntry[]> {
    const entries = await Promise.all(
      this.#unresolved.map(
        async ({ packageDir, ...entry }): Promise<UnresolvedEntry> => {
          const pkg =
            packageDir === undefined
              ? null
              : await this.#catalog.read(packageDir);
          return {
            ...entry,
            file: rel(entry.file),
            ...(pkg ? { package: `${pkg.name}@${pkg.version}` } : {}),
          };
        },
      ),
    );
    const unique = new Map(
      entries.map((e) => [
        `${e.file}:${e.line}:${e.column ?? 0}:${e.specifier}`,
        e,
      ]),
    );
    return [...unique.values()].sort(byLocation);
  }
}

type ResolvedTarget =
  | { type: "builtin" }
  | { type: "file"; path: string }
  | { type: "package"; dir: string; path: string }
  | { type: "unresolved" };

function describeTarget(
  target: ResolvedTarget,
  rel: (path: string) => string,
): string {
  switch (target.type) {
    case "builtin":
      return "builtin";
    case "file":
      return `file:${rel(target.path)}`;
    case "package":
      return `package:${rel(target.dir)}`;
    default:
      return "unresolved";
  }
}

function byLocation(
  a: { file: string; line: number; specifier: string },
  b: { file: string; line: number; specifier: string },
): number {
  return (
    compare(a.file, b.file) ||
    a.line - b.line ||
    compare(a.specifier, b.specifier)
  );
}

function roleOf(ext: string): AppFile["role"] {
  if (ext === ".json") return "json";
  if (ext === ".node") return "native";
  return PARSED.has(ext) ? "module" : "asset";
}

/** Walks up from `file` to the directory whose package.json is named `name`. */
async function findPackageRoot(
  file: string,
  name: string,
): Promise<string | null> {
  let dir = dirname(file);
  for (;;) {
    try {
      const json = JSON.parse(
        await readFile(join(dir, "package.json"), "utf8"),
      ) as { name?: unknown };
      if (json.name === name) return dir;
    } catch (error) {
      if (!isNotFound(error) && !(error instanceof SyntaxError)) throw error;
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * The real path of an entry (as the promise API's realpath gives it). The scan's look-ups of
 * entries, package.json files and lockfiles are synchronous: a handful of small reads and stats
 * from the page cache, where each awaited call costs thread-pool round trips (a rebuild waits
 * out dozens of them in a row).
 */
function realEntry(entry: string): string {
  return realpathSync.native(entry);
}

/** The nearest package.json at or above `dir`, or null. */
async function nearestPackageJson(dir: string): Promise<string | null> {
  for (let current = dir; ; current = dirname(current)) {
    const candidate = join(current, "package.json");
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (dirname(current) === current) return null;
  }
}

/** A run-time dependency an app's package.json declares, with the line naming it. */
interface Declared {
  name: string;
  optional: boolean;
  line: number;
}

/** `dependencies` and `optionalDependencies` of a package.json (never devDependencies). */
async function declaredDependencies(path: string): Promise<Declared[]> {
  const text = readFileSync(path, "utf8");
  let json: { dependencies?: unknown; optionalDependencies?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (error) {
    if (error instanceof SyntaxError) return [];
    throw error;
  }
  const keys = (value: unknown) =>
    value !== null && typeof value === "object" && !Array.isArray(value)
      ? Object.keys(value)
      : [];
  const optional = new Set(keys(json.optionalDependencies));
  const names = [...new Set([...keys(json.dependencies), ...optional])];
  return names.map((name) => ({
    name,
    optional: optional.has(name),
    line: lineOf(text, JSON.stringify(name)),
  }));
}

/** The 1-based line of the first occurrence of `needle` in `text` (1 when absent). */
function lineOf(text: string, needle: string): number {
  const at = text.indexOf(needle);
  return at < 0 ? 1 : text.slice(0, at).split("\n").length;
}

/**
 * A traced scan's other direction: the app files (real paths) and package directories the scan
 * ships that the run never touched. Package.json files are metadata Node reads on its own.
 */
function notLoaded(
  traced: string[],
  files: string[],
  packages: string[],
  rel: (path: string) => string,
): NonNullable<ScanResult["trace"]> {
  const touched = new Set(traced);
  return {
    notLoaded: {
      files: files
        .filter((f) => !touched.has(f) && basename(f) !== "package.json")
        .map(rel)
        .sort(compare),
      packages: packages.sort(compare),
    },
  };
}

/** `roots` and every package their dependencies reach within `packages`. */
function closureOf(
  roots: string[],
  packages: Map<string, { deps: Map<string, boolean> }>,
): Set<string> {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    if (seen.has(dir)) continue;
    seen.add(dir);
    for (const dep of packages.get(dir)?.deps.keys() ?? []) stack.push(dep);
  }
  return seen;
}

/** `envpack.include` of a package.json: a list of package names and globs. */
async function packageJsonIncludes(path: string): Promise<string[]> {
  let json: { envpack?: { include?: unknown } };
  try {
    json = JSON.parse(readFileSync(path, "utf8")) as typeof json;
  } catch (error) {
    if (error instanceof SyntaxError) return [];
    throw error;
  }
  const include = json.envpack?.include;
  if (include === undefined) return [];
  if (!Array.isArray(include) || !include.every((i) => typeof i === "string"))
    throw new InputError(
      "ENVPACK_INPUT_INCLUDE_MISSING",
      `${path}: envpack.include must be a list of package names and globs`,
      {
        hint: 'e.g. "envpack": { "include": ["pino-pretty", "views/**"] }',
        details: { path },
      },
    );
  return include as string[];
}
