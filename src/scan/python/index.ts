// Scans Python entries against a Conda prefix: follows the app's own modules and maps every other
// import to the standard library, a conda or pip package, or an unresolved finding.

import { realpath } from "node:fs/promises";
import { dirname, extname } from "node:path";
import type { Parser } from "web-tree-sitter";
import {
  compare,
  type AppFile,
  type ImportRecord,
  type UnresolvedEntry,
} from "../../core/index.js";
import type { CondaEnvReader } from "../../conda/index.js";
import { readCondaPrefix, type CondaPrefix } from "../conda/index.js";
import {
  appFile,
  commonDirectory,
  readSource,
  toPosixRelative,
  type ReadSource,
  type ScanResult,
  type ScannerOptions,
  type TraceLog,
} from "../scan-result.js";
import {
  findPythonImports,
  type ModuleSite,
  type PythonImportSite,
} from "./find-imports.js";
import {
  findProjectDir,
  readDeclarations,
  readPyprojectIncludes,
  selectDeclared,
} from "./declared.js";
import { resolveIncludes } from "./includes.js";
import { LocalModuleFinder, type LocalModule } from "./local-modules.js";
import { packageClosure } from "./package-closure.js";
import {
  importRecords,
  unresolvedEntries,
  type PendingImport,
  type PendingUnresolved,
  type Target,
} from "./records.js";
import { createPythonParser } from "./parser.js";
import { notLoaded, sortTraced, type TracedPython } from "./traced.js";
import { assetDirectoryFiles } from "../asset-directory.js";
import { resolveByTrace } from "../traced-sites.js";
import { ASSET_SKIPPED, assetFiles, type PendingAsset } from "./assets.js";

/** Options of {@link scanPython}: entries plus the absolute Conda prefix. */
export interface PythonScanOptions extends ScannerOptions {
  prefix: string;
  /**
   * What a traced run touched, beyond `traced` (its paths): the directories the app listed (their
   * files ship, within the asset budget) and the modules imported by calling line (settling
   * computed-name findings).
   */
  trace?: TraceLog | undefined;
  /** Reads the prefix (default: a read of its own). */
  readEnv?: CondaEnvReader | undefined;
}

/**
 * Scans Python entries against a Conda prefix. Unresolved imports are data.
 * @throws InputError ENVPACK_INPUT_ENV_NOT_FOUND, ENVPACK_INPUT_ENV_NOT_CONDA, ENVPACK_INPUT_ENV_NO_PYTHON, ENVPACK_INPUT_ENV_CORRUPT
 */
export async function scanPython(
  options: PythonScanOptions,
): Promise<ScanResult> {
  // The scan's duration counts reading the prefix and loading the parser.
  const started = performance.now();
  const env = await readCondaPrefix(
    options.prefix,
    options.signal,
    options.readEnv,
  );
  const parser = await createPythonParser();
  try {
    return await new PythonScan(options, env, parser).run(started);
  } finally {
    parser.delete();
  }
}

class PythonScan {
  readonly #options: PythonScanOptions;
  readonly #env: CondaPrefix;
  readonly #parser: Parser;
  readonly #finder = new LocalModuleFinder();
  /** sys.path[0] of the entries: their directories, in entry order. */
  #roots: string[] = [];
  readonly #queue: string[] = [];
  readonly #files = new Map<
    string,
    { source: ReadSource; role: AppFile["role"]; reason?: AppFile["reason"] }
  >();
  /** Project files only a traced run or an include reached, and which. */
  readonly #extraFiles = new Map<string, "asset" | "traced" | "included">();
  /** Self-relative paths found in scanned modules, not yet looked up. */
  #pendingAssets: PendingAsset[] = [];
  /** Package ids named by an include. */
  readonly #included = new Set<string>();
  readonly #imports: PendingImport[] = [];
  readonly #unresolved: PendingUnresolved[] = [];
  /** Package id → needed only through optional imports. */
  readonly #used = new Map<string, boolean>();
  /** Package id → declared only under an environment marker. */
  readonly #declared = new Map<string, boolean>();

  constructor(options: PythonScanOptions, env: CondaPrefix, parser: Parser) {
    this.#options = options;
    this.#env = env;
    this.#parser = parser;
  }

  async run(started: number): Promise<ScanResult> {
    const entries = await Promise.all(
      this.#options.entries.map((e) => realpath(e)),
    );
    this.#roots = [...new Set(entries.map((e) => dirname(e)))];
    const entrySet = new Set(entries);
    this.#queue.push(...entries);
    await this.#drain(entrySet);
    const project =
      (await findProjectDir(dirname(entries[0] as string))) ??
      commonDirectory(entries);
    const settle = () => this.#settle(entrySet, project);
    await settle();
    let traced: TracedPython | undefined;
    if (this.#options.traced !== undefined) {
      traced = await sortTraced(
        {
          paths: this.#options.traced,
          listed: this.#options.trace?.listed ?? [],
        },
        this.#env,
        project,
      );
      const listed: string[] = [];
      for (const dir of traced.listed)
        listed.push(
          ...((await assetDirectoryFiles(
            dir,
            { how: "listed by the traced run" },
            this.#options.onEvent,
            ASSET_SKIPPED,
          )) ?? []),
        );
      this.#addExtra(
        await Promise.all([...traced.files, ...listed].map((f) => realpath(f))),
        "traced",
      );
      await settle();
    }
    await this.#addIncluded(project);
    await settle();
    if (this.#options.declared !== false) await this.#addDeclared(project);
    const root = commonDirectory([...this.#files.keys()]);
    const rel = (path: string) => toPosixRelative(root, path);
    const env = this.#env;
    const result: ScanResult = {
      kind: "conda",
      runtime: {
        name: "python",
        version: env.python.version,
        implementation: "cpython",
        platform: env.platform,
      },
      root,
      env: { prefix: env.prefix, sitePackages: env.sitePackages },
      entries: entries.map(rel),
      files: [...this.#files]
        .map(([path, f]) => ({
          ...appFile(rel(path), f.source, f.role),
          ...(f.reason ? { reason: f.reason } : {}),
        }))
        .sort((a, b) => compare(a.path, b.path)),
      packages: packageClosure(env, {
        imported: this.#used,
        declared: this.#declared,
        included: this.#included,
        traced: new Set(
          [...(traced?.packages ?? [])].filter((id) => !this.#used.has(id)),
        ),
      }),
      imports: importRecords(this.#imports, rel),
      unresolved: unresolvedEntries(
        resolveByTrace(this.#unresolved, this.#options.trace?.imports ?? []),
        rel,
      ),
    };
    if (traced !== undefined) result.trace = notLoaded(result, traced, rel);
    this.#options.onEvent?.({
      type: "scan:done",
      files: this.#files.size,
      packages: result.packages.length,
      unresolved: result.unresolved.length,
      durationMs: Math.round(performance.now() - started),
    });
    return result;
  }

  /**
   * Scans the queue, then the app files the scanned modules name by self-relative paths (with
   * reason `asset`), until both are empty.
   */
  async #settle(entries: ReadonlySet<string>, project: string): Promise<void> {
    for (;;) {
      await this.#drain(entries);
      if (this.#pendingAssets.length === 0) return;
      const pending = this.#pendingAssets;
      this.#pendingAssets = [];
      this.#addExtra(
        await assetFiles(pending, {
          project,
          prefix: this.#env.prefix,
          onEvent: this.#options.onEvent,
        }),
        "asset",
      );
    }
  }

  /** Queues project files no import reached, with why they ship (the first reason stays). */
  #addExtra(paths: string[], reason: "asset" | "traced" | "included"): void {
    for (const path of paths) {
      if (this.#files.has(path) || this.#extraFiles.has(path)) continue;
      this.#extraFiles.set(path, reason);
      this.#queue.push(path);
    }
  }

  /** Scans the queue, one file at a time: the parser is not re-entrant, and reads are cheap next to parsing. */
  async #drain(entries: ReadonlySet<string>): Promise<void> {
    while (this.#queue.length > 0) {
      this.#options.signal?.throwIfAborted();
      const file = this.#queue.shift() as string;
      if (this.#files.has(file)) continue;
      await this.#scanFile(file, entries.has(file) ? "entry" : "module");
    }
  }

  async #scanFile(file: string, role: AppFile["role"]): Promise<void> {
    const source = await readSource(file);
    const reason = this.#extraFiles.get(file);
    // A file a traced run read, an include or a self-relative path named that is not Python
    // source ships as it is.
    const isSource = extname(file) === ".py" || reason === undefined;
    this.#files.set(file, {
      source,
      role: isSource ? role : "asset",
      ...(reason ? { reason } : {}),
    });
    this.#options.onEvent?.({
      type: "scan:file",
      file,
      count: this.#files.size,
    });
    if (source.text === undefined || !isSource) return;
    const { sites, assets, problem } = findPythonImports(
      this.#parser,
      source.text,
    );
    for (const site of assets) this.#pendingAssets.push({ file, site });
    if (problem)
      this.#files.set(file, {
        ...(this.#files.get(file) as { role: AppFile["role"] }),
        source: { ...source, problem },
      });
    for (const site of sites) await this.#resolveSite(file, site);
  }

  async #resolveSite(file: string, site: PythonImportSite): Promise<void> {
    const miss = (
      specifier: string,
      reason: UnresolvedEntry["reason"],
      message: string,
      kind: ImportRecord["kind"],
    ) => {
      this.#record(file, site, specifier, kind, { type: "unresolved" });
      this.#unresolved.push({
        specifier,
        file,
        line: site.line,
        column: site.column,
        reason,
        message,
        ...(site.optional ? { optional: true } : {}),
      });
    };
    if (site.type === "dynamic") {
      return miss(
        site.text,
        "dynamic-expression",
        `module name ${site.text} is computed at run time and cannot be resolved statically`,
        "python-dynamic",
      );
    }
    const parts = site.module === "" ? [] : site.module.split(".");
    // Relative imports resolve by directory, as they do when the app runs as a package
    // (`python -m pkg.main`); the scanner cannot know whether a file is run as a script instead.
    if (site.level > 0) {
      let base = dirname(file);
      for (let i = 1; i < site.level; i++) base = dirname(base);
      const local = await this.#finder.find(base, parts);
      if (!local) {
        return miss(
          site.specifier,
          "file-not-found",
          `relative import ${site.specifier} finds no module under ${base}`,
          site.kind,
        );
      }
      return this.#useLocal(file, site, local);
    }
    const top = parts[0] ?? "";
    if (this.#env.builtins.has(top))
      return this.#record(file, site, site.specifier, site.kind, {
        type: "builtin",
      });
    let namespace: LocalModule | undefined;
    for (const root of this.#roots) {
      const local = await this.#finder.find(root, parts);
      if (local && !local.namespace) return this.#useLocal(file, site, local);
      namespace ??= local ?? undefined;
    }
    const owner = this.#env.modules.get(top);
    if (owner?.type === "stdlib")
      return this.#record(file, site, site.specifier, site.kind, {
        type: "builtin",
      });
    if (owner?.type === "package") {
      this.#used.set(
        owner.id,
        (this.#used.get(owner.id) ?? true) && site.optional,
      );
      return this.#record(file, site, site.specifier, site.kind, {
        type: "package",
        id: owner.id,
      });
    }
    // A namespace portion in the app is found only when no installed module has the name.
    if (namespace) return this.#useLocal(file, site, namespace);
    if (owner?.type === "editable") {
      return miss(
        site.specifier,
        "local-project",
        `${top} comes from an editable install of ${owner.name} ${owner.version} whose source is ${owner.source}; it is not part of the environment`,
        site.kind,
      );
    }
    return miss(
      site.specifier,
      "not-installed",
      `no module named ${top} in ${this.#env.prefix} (not built in, not in the standard library, no conda-meta record or dist-info provides it)`,
      site.kind,
    );
  }

  /** Follows a local module: its package `__init__.py` chain, and for `from M import n` each `n` that is a submodule file. */
  async #useLocal(
    file: string,
    site: ModuleSite,
    local: LocalModule,
  ): Promise<void> {
    this.#enqueue(local.files);
    const submoduleNames: string[] = [];
    const attributeNames: string[] = [];
    if (site.fromImport && local.packageDir !== undefined) {
      for (const name of site.names) {
        const sub = await this.#finder.find(local.packageDir, [name]);
        if (sub) {
          this.#enqueue(sub.files);
          const specifier = site.specifier.endsWith(".")
            ? `${site.specifier}${name}`
            : `${site.specifier}.${name}`;
          this.#record(file, site, specifier, site.kind, {
            type: "file",
            path: sub.target,
          });
          submoduleNames.push(name);
        } else {
          attributeNames.push(name);
        }
      }
    }
    const needsModule =
      !site.fromImport ||
      site.names.length === 0 ||
      attributeNames.length > 0 ||
      local.packageDir === undefined;
    if (!needsModule) return;
    if (
      local.namespace &&
      local.packageDir !== undefined &&
      local.target === local.packageDir &&
      site.fromImport &&
      attributeNames.length > 0
    ) {
      // A namespace package has no attributes of its own: `from ns import x` needs a submodule x.
      for (const name of attributeNames) {
        const specifier = site.specifier.endsWith(".")
          ? `${site.specifier}${name}`
          : `${site.specifier}.${name}`;
        this.#record(file, site, specifier, site.kind, { type: "unresolved" });
        this.#unresolved.push({
          specifier,
          file,
          line: site.line,
          column: site.column,
          reason: "file-not-found",
          message: `${specifier} is neither ${name}.py nor a package in ${local.packageDir}`,
          ...(site.optional ? { optional: true } : {}),
        });
      }
      return;
    }
    this.#record(file, site, site.specifier, site.kind, {
      type: "file",
      path: local.target,
    });
  }

  #enqueue(files: string[]): void {
    for (const f of files) if (!this.#files.has(f)) this.#queue.push(f);
  }

  #record(
    file: string,
    site: PythonImportSite,
    specifier: string,
    kind: ImportRecord["kind"],
    target: Target,
  ): void {
    this.#imports.push({
      specifier,
      file,
      line: site.line,
      kind,
      target,
      optional: site.optional,
    });
  }

  /**
   * The packages the project's pyproject.toml and requirements files declare ship (reason
   * `declared` unless an import reaches them), and those files with them (they are what the
   * bundle's contents follow from). A declared package not installed is a finding on its line,
   * as a package.json dependency is; one guarded by a marker is no finding.
   */
  async #addDeclared(project: string): Promise<void> {
    const read = await readDeclarations(project, this.#parser);
    for (const file of read.files) {
      if (this.#files.has(file)) continue;
      this.#files.set(file, {
        source: await readSource(file),
        role: "asset",
        reason: "declared",
      });
    }
    const { declared, findings } = selectDeclared(read, this.#env);
    for (const [id, optional] of declared) this.#declared.set(id, optional);
    this.#unresolved.push(...findings);
  }

  /**
   * The includes of `[tool.envpack] include` in the project's pyproject.toml and of the options:
   * an installed distribution's name ships it with its closure, a glob (relative to the project
   * directory) adds the project files it matches (`.py` scanned as modules).
   * @throws InputError ENVPACK_INPUT_INCLUDE_MISSING naming an include that matches nothing
   */
  async #addIncluded(project: string): Promise<void> {
    const { packages, files } = await resolveIncludes(
      project,
      [
        ...(await readPyprojectIncludes(project)),
        ...(this.#options.include ?? []),
      ],
      this.#env,
    );
    for (const id of packages) this.#included.add(id);
    this.#addExtra(files, "included");
  }
}
