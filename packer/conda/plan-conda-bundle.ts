// Turns a Conda prefix into the entries of a Conda bundle with conda-pack's file selection, plus the relocation record and script.

import type { Dirent } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  isDirectory,
  InputError,
  compare,
  envpackFile,
  matchSpecName,
  normaliseName,
  type WarnEvent,
  type WarningCode,
} from "../../src/core/index.js";
import {
  addPackage,
  addUnmanaged,
  UNMANAGED_PLACEHOLDER,
  type CondaBundleEntry,
  type CondaPackage,
  type Context,
  type RelocationFile,
} from "./prefix-entries.js";
import { pySourceOf, walkPrefix, type PrefixItemKind } from "./prefix-walk.js";
import { settleByteCode } from "./settle-byte-code.js";
import {
  findEditableInstalls,
  readCondaEnv,
  readManagedFiles,
  type CondaEnv,
  type CondaEnvReader,
  type DistInfo,
} from "../../src/conda/index.js";

export {
  UNMANAGED_PLACEHOLDER,
  type CondaBundleEntry,
  type RelocationFile,
} from "./prefix-entries.js";

/** Where the relocation record and script live inside a Conda bundle. */
export const RELOCATE_JSON_PATH = ".envpack/relocate.json";
export const RELOCATE_SCRIPT_PATH = ".envpack/relocate.py";

/** Unmanaged files conda creates on activation in old versions; conda-pack leaves them out. */
const ACTIVATION_SCRIPTS = new Set([
  "bin/conda",
  "bin/activate",
  "bin/deactivate",
]);

/** `.envpack/relocate.json`: what `relocate.py` rewrites after unpacking. */
export interface CondaRelocation {
  version: 1;
  /** The most common placeholder, used for files that name none. */
  placeholder: string;
  files: RelocationFile[];
}

/** Options of {@link planCondaBundle}. */
export interface PlanCondaBundleOptions {
  /** The Conda prefix (the directory holding `conda-meta/`). */
  prefix: string;
  /**
   * `--prune`: packages to keep (`conda:<name>`, `pip:<name>` or a bare name). Kept are those, their
   * `depends` / `Requires-Dist` closure, python with its closure, and unmanaged files that belong to
   * a kept pip package or to no package. Undefined keeps everything.
   */
  keep?: ReadonlySet<string>;
  onWarn?: (warning: WarnEvent) => void;
  signal?: AbortSignal;
  /**
   * Reads the prefix (default: a read of its own); a build passes the reader its scan used, so
   * both decide from one read of the environment.
   */
  readEnv?: CondaEnvReader;
  /**
   * Given the runtime layer's entries (sorted, as `entries` holds them) once they are final: before
   * the rest of the prefix is decided when no other package lists a file of python's, else with the
   * plan. A build packs that layer meanwhile.
   */
  onRuntime?: (entries: CondaBundleEntry[]) => void;
  /**
   * With `onRuntime` and without `keep`: given python's entries as soon as they are decided from
   * its own record and the directories its files are in, before the other records are read and
   * the rest of the prefix walked (a build starts packing them). `onRuntime` follows as it
   * would without: given this very array when the draft holds, else the runtime layer's entries
   * (another package lists a file of python's). Not given when python's files are not all there:
   * the plan fails as it would without.
   */
  onRuntimeDraft?: (entries: CondaBundleEntry[]) => void;
  /**
   * For repacking another tool's output: the prefix path the files embed, when it is not the
   * directory read (default: `prefix`).
   */
  embeddedPrefix?: string;
  /** For repacking another tool's output: prefix-relative paths to leave out. */
  exclude?: ReadonlySet<string>;
  /**
   * For repacking another tool's output, which has no package cache and may have rewritten
   * shebangs: no uncached or modified-file warnings.
   */
  trustContents?: boolean;
}

/** The planned bundle: entries sorted by path, and the relocation record among them. */
export interface CondaBundlePlan {
  entries: CondaBundleEntry[];
  relocation: CondaRelocation;
}

/**
 * Lists a Conda bundle's entries with conda-pack's semantics: the files of every conda-meta
 * record (placeholder files with their package-cache bytes, so the bundle holds the placeholder),
 * `conda-meta/*.json` with `link.source`, `extracted_package_dir` and `package_tarball_full_path`
 * emptied, `conda-meta/history`, and every unmanaged file except activation scripts and byte code
 * whose source a package manages. Unmanaged UTF-8 files that contain the prefix get
 * {@link UNMANAGED_PLACEHOLDER} instead. No byte code is compiled, and `.pyc` files that embed the
 * prefix (their source's path) are left out so the bundle does not depend on where the environment
 * was built; Python recompiles them from source. Up-to-date timestamp `.pyc` files are packed as
 * hash-based ones and stale ones left out (settle-byte-code.ts). Adds `.envpack/relocate.json`
 * and `.envpack/relocate.py`. Warnings: `ENVPACK_WARN_CONDA_UNCACHED`, `…_UNRELOCATABLE`,
 * `…_MODIFIED_FILE`, `…_LINK_OUTSIDE`, `…_PRUNE_UNKNOWN`, `…_SPECIAL_FILE`.
 * @throws InputError ENVPACK_INPUT_ENV_NOT_FOUND, ENVPACK_INPUT_ENV_NOT_CONDA, ENVPACK_INPUT_ENV_NO_PYTHON,
 *   ENVPACK_INPUT_ENV_CORRUPT, ENVPACK_INPUT_ENV_EDITABLE, ENVPACK_INPUT_ENV_MISSING_FILES
 */
export async function planCondaBundle(
  options: PlanCondaBundleOptions,
): Promise<CondaBundlePlan> {
  const prefix = resolve(options.prefix);
  const { signal } = options;
  const warn = (
    code: WarningCode,
    message: string,
    data: Record<string, unknown>,
  ) => options.onWarn?.({ type: "warn", code, message, data });
  const env = await (options.readEnv ?? readCondaEnv)(prefix, signal);
  // The draft's listings are the walk's: both see python's directories as one read gives them.
  const listed = new Map<string, Dirent[]>();
  const draft =
    options.onRuntimeDraft !== undefined &&
    options.onRuntime !== undefined &&
    options.keep === undefined
      ? await draftRuntime(
          env,
          {
            prefix,
            embedded: options.embeddedPrefix ?? prefix,
            warn: contextWarn(warn, options.trustContents),
          },
          listed,
          signal,
        )
      : undefined;
  if (draft !== undefined) options.onRuntimeDraft?.(draft.entries);
  const packages = await packagesOf(env, draft?.python);
  const items = walkPrefix(prefix, { onWarn: options.onWarn, signal, listed });
  const managed = new Set<string>(["conda-meta/history"]);
  for (const pkg of packages) {
    managed.add(pkg.metaPath);
    for (const file of pkg.files) managed.add(file.target);
  }
  const pips = env.distInfos;
  await refuseEditable(env);
  signal?.throwIfAborted();

  const kept = keptPackages(packages, pips, options.keep, warn);
  const keptConda = packages.filter((p) => kept.conda.has(p.record.name));
  await refuseMissing(prefix, keptConda, items);
  for (const pkg of keptConda.filter(
    (p) => !p.cached && !options.trustContents,
  ))
    warn(
      "ENVPACK_WARN_CONDA_UNCACHED",
      `${pkg.record.name} ${pkg.record.version} is not in the package cache; its files are read from ${prefix}`,
      { package: pkg.record.name, url: pkg.json["url"] },
    );

  // The python package (its files and record) is the runtime layer, shared by every environment
  // with that interpreter build; the prefix is relocated as a whole once assembled.
  const python = keptConda.find((p) => p.metaPath === env.python.metaPath);
  const runtime =
    python === undefined ? new Set<string>() : runtimePaths(python);
  // The runtime layer decided first and handed over, when its entries are final then: no other
  // package lists a file of python's (a later one's decision would replace python's). Its
  // warnings wait for python's turn, so they come in the order they always came.
  const early =
    options.onRuntime !== undefined &&
    python !== undefined &&
    !keptConda.some(
      (p) => p !== python && p.files.some((f) => runtime.has(f.target)),
    )
      ? python
      : undefined;
  // A draft of that same package holds: its decisions (made from the same listings of python's
  // directories) are the plan's.
  const drafted =
    early !== undefined && early === draft?.python ? draft : undefined;
  const out = drafted?.out ?? new Map<string, CondaBundleEntry>();
  const relocation = drafted?.relocation ?? [];
  const ctx: Context = {
    prefix,
    embedded: options.embeddedPrefix ?? prefix,
    items,
    out,
    relocation,
    warn: contextWarn(warn, options.trustContents),
  };
  const held: (() => void)[] = drafted?.held ?? [];
  if (drafted !== undefined) {
    signal?.throwIfAborted();
    options.onRuntime?.(drafted.entries);
  } else if (early !== undefined) {
    addPackage(
      { ...ctx, warn: (...w) => held.push(() => ctx.warn(...w)) },
      early,
    );
    signal?.throwIfAborted();
    settleByteCode(out, prefix);
    options.onRuntime?.(layered(out.values(), runtime));
  }
  // Each file's decision, in one synchronous pass: most only record where the bytes are, the
  // rest read one small file (a placeholder or unmanaged file).
  for (const pkg of keptConda) {
    signal?.throwIfAborted();
    if (pkg === early) for (const give of held) give();
    else addPackage(ctx, pkg);
  }
  signal?.throwIfAborted();
  const pipOwner = new Map<string, DistInfo>();
  for (const pip of pips) for (const f of pip.files) pipOwner.set(f, pip);
  for (const [path, kind] of items) {
    if (managed.has(path) && path !== "conda-meta/history") continue;
    if (path.startsWith("conda-meta/") && path.endsWith(".json")) continue;
    if (ACTIVATION_SCRIPTS.has(path) || options.exclude?.has(path)) continue;
    const source = pySourceOf(path);
    if (source !== undefined && managed.has(source)) continue;
    const owner =
      pipOwner.get(path) ??
      (source === undefined ? undefined : pipOwner.get(source));
    if (owner && !kept.pip.has(owner.key)) continue;
    addUnmanaged(ctx, path, kind);
  }

  const relocate = await readRelocateScript();
  const placeholderCounts = new Map<string, number>();
  for (const r of relocation)
    placeholderCounts.set(
      r.placeholder as string,
      (placeholderCounts.get(r.placeholder as string) ?? 0) + 1,
    );
  const [main = UNMANAGED_PLACEHOLDER] = [...placeholderCounts.entries()]
    .sort((a, b) => b[1] - a[1] || compare(a[0], b[0]))
    .map(([p]) => p);
  const record: CondaRelocation = {
    version: 1,
    placeholder: main,
    files: relocation
      .sort((a, b) => compare(a.path, b.path))
      .map(({ placeholder, ...rest }) =>
        placeholder === main ? rest : { ...rest, placeholder },
      ),
  };
  out.set(RELOCATE_JSON_PATH, {
    path: RELOCATE_JSON_PATH,
    type: "file",
    data: Buffer.from(`${JSON.stringify(record, null, 1)}\n`),
  });
  out.set(RELOCATE_SCRIPT_PATH, {
    path: RELOCATE_SCRIPT_PATH,
    type: "file",
    data: relocate,
  });
  settleByteCode(out, prefix, early === undefined ? undefined : runtime);
  const entries = layered(out.values(), runtime);
  if (early === undefined)
    options.onRuntime?.(entries.filter((e) => e.layer === "runtime"));
  return { entries, relocation: record };
}

function keptPackages(
  packages: CondaPackage[],
  pips: DistInfo[],
  keep: ReadonlySet<string> | undefined,
  warn: Context["warn"],
): { conda: Set<string>; pip: Set<string> } {
  const conda = new Set<string>();
  const pip = new Set<string>();
  if (keep === undefined) {
    for (const p of packages) conda.add(p.record.name);
    for (const p of pips) pip.add(p.key);
    return { conda, pip };
  }
  const byName = new Map(packages.map((p) => [p.record.name, p]));
  const condaByKey = new Map(
    packages.map((p) => [normaliseName(p.record.name), p.record.name]),
  );
  const pipByKey = new Map(pips.map((p) => [p.key, p]));
  const queue: string[] = [];
  const addConda = (name: string) => {
    if (!conda.has(name) && byName.has(name)) {
      conda.add(name);
      queue.push(`conda:${name}`);
    }
  };
  const addPip = (key: string) => {
    if (!pip.has(key) && pipByKey.has(key)) {
      pip.add(key);
      queue.push(`pip:${key}`);
    }
  };
  const addAny = (key: string) => {
    if (pipByKey.has(key)) addPip(key);
    else {
      const name = condaByKey.get(key);
      if (name !== undefined) addConda(name);
    }
  };
  for (const wanted of [...keep].sort(compare)) {
    if (wanted.startsWith("conda:") && byName.has(wanted.slice(6)))
      addConda(wanted.slice(6));
    else if (
      wanted.startsWith("pip:") &&
      pipByKey.has(normaliseName(wanted.slice(4)))
    )
      addPip(normaliseName(wanted.slice(4)));
    else if (byName.has(wanted)) addConda(wanted);
    else if (
      pipByKey.has(normaliseName(wanted)) ||
      condaByKey.has(normaliseName(wanted))
    )
      addAny(normaliseName(wanted));
    else
      warn(
        "ENVPACK_WARN_PRUNE_UNKNOWN",
        `--prune: ${wanted} is not installed in the environment`,
        { package: wanted },
      );
  }
  addConda("python");
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    if (id.startsWith("conda:"))
      for (const spec of byName.get(id.slice(6))!.record.depends ?? [])
        addConda(matchSpecName(spec));
    else for (const req of pipByKey.get(id.slice(4))!.requires) addAny(req);
  }
  return { conda, pip };
}

async function refuseMissing(
  prefix: string,
  packages: CondaPackage[],
  items: Map<string, PrefixItemKind>,
): Promise<void> {
  const missing: { package: string; version: string; paths: string[] }[] = [];
  for (const pkg of packages) {
    const paths: string[] = [];
    for (const file of pkg.files) {
      if (file.pathType === "pyc" || items.has(file.target)) continue;
      if (
        file.pathType === "directory" &&
        (await isDirectory(join(prefix, file.target)))
      )
        continue;
      paths.push(file.target);
    }
    if (paths.length > 0)
      missing.push({
        package: pkg.record.name,
        version: pkg.record.version,
        paths: paths.sort(compare),
      });
  }
  if (missing.length === 0) return;
  const listed = missing
    .map((m) => {
      const shown = m.paths.slice(0, 3).join(", ");
      const more = m.paths.length > 3 ? ` (+${m.paths.length - 3} more)` : "";
      return `${m.package} ${m.version}: ${shown}${more}`;
    })
    .join("; ");
  throw new InputError(
    "ENVPACK_INPUT_ENV_MISSING_FILES",
    `files managed by conda are missing from ${prefix}: ${listed}`,
    {
      hint: "Reinstall those packages (`conda install --force-reinstall -p PREFIX NAME`); pip may have removed or overwritten conda's files (check with `conda list`).",
      details: { prefix, missing },
    },
  );
}

/** The records of an environment with their files, as conda-pack reads them; `read` is one read already. */
async function packagesOf(
  env: CondaEnv,
  read?: CondaPackage,
): Promise<CondaPackage[]> {
  const packages: CondaPackage[] = [];
  // One after another: the reads are small synchronous files (see readCondaRecord).
  for (const record of env.records)
    packages.push(
      read?.metaPath === record.metaPath
        ? read
        : { ...record, ...(await readManagedFiles(record, env.sitePackages)) },
    );
  return packages;
}

/** The python package's entries, decided ahead of the rest of the prefix. */
interface RuntimeDraft {
  python: CondaPackage;
  entries: CondaBundleEntry[];
  out: Map<string, CondaBundleEntry>;
  relocation: RelocationFile[];
  /** Its warnings, given in python's turn. */
  held: (() => void)[];
}

/**
 * python's entries decided from its record and a walk of the directories its files are in
 * (listed into `listed` for the whole walk), before any other record is read; undefined when a
 * file of python's is not there, or deciding one failed: the plan then decides python in its
 * turn, after the checks that come first, and fails there as it would have.
 */
async function draftRuntime(
  env: CondaEnv,
  base: Pick<Context, "prefix" | "embedded" | "warn">,
  listed: Map<string, Dirent[]>,
  signal: AbortSignal | undefined,
): Promise<RuntimeDraft | undefined> {
  const python: CondaPackage = {
    ...env.python,
    ...(await readManagedFiles(env.python, env.sitePackages)),
  };
  // Each file's path and its ancestors: the directories a whole walk descends to reach it.
  const within = new Set<string>();
  for (const { target } of python.files)
    for (
      let end = target.length;
      end > 0 && !within.has(target.slice(0, end));
      end = target.lastIndexOf("/", end - 1)
    )
      within.add(target.slice(0, end));
  const items = walkPrefix(base.prefix, { signal, within, listed });
  if (python.files.some((f) => f.pathType !== "pyc" && !items.has(f.target)))
    return undefined;
  const held: (() => void)[] = [];
  const ctx: Context = {
    ...base,
    items,
    out: new Map(),
    relocation: [],
    warn: (...w) => held.push(() => base.warn(...w)),
  };
  try {
    addPackage(ctx, python);
  } catch {
    // Not the draft's to throw: python's turn meets the same failure again, after the checks
    // that come before it (a missing file, an editable install), so the plan fails as it would.
    return undefined;
  }
  settleByteCode(ctx.out, base.prefix);
  return {
    python,
    entries: layered(ctx.out.values(), runtimePaths(python)),
    out: ctx.out,
    relocation: ctx.relocation,
    held,
  };
}

/** The paths of the runtime layer: the python package's files and its record. */
function runtimePaths(python: CondaPackage): Set<string> {
  const runtime = new Set<string>([python.metaPath]);
  for (const file of python.files) runtime.add(file.target);
  return runtime;
}

/** Entries sorted by path, each in the runtime layer or the packages layer. */
function layered(
  entries: Iterable<CondaBundleEntry>,
  runtime: ReadonlySet<string>,
): CondaBundleEntry[] {
  return [...entries]
    .map((e): CondaBundleEntry => ({
      ...e,
      layer: runtime.has(e.path) ? "runtime" : "packages",
    }))
    .sort((a, b) => compare(a.path, b.path));
}

/** A plan's warn: for another tool's output (`trustContents`), without modified-file warnings. */
function contextWarn(
  warn: Context["warn"],
  trustContents: boolean | undefined,
): Context["warn"] {
  return trustContents
    ? (code, message, data) => {
        if (code !== "ENVPACK_WARN_CONDA_MODIFIED_FILE")
          warn(code, message, data);
      }
    : warn;
}

/**
 * Refuses editable installs, as conda-pack does.
 * @throws InputError ENVPACK_INPUT_ENV_EDITABLE naming the packages (or `.pth` lines)
 */
async function refuseEditable(env: CondaEnv): Promise<void> {
  const found = await findEditableInstalls(env);
  if (found.length === 0) return;
  const names = found.map((f) => f.name);
  throw new InputError(
    "ENVPACK_INPUT_ENV_EDITABLE",
    `cannot pack ${env.prefix}: editable packages are installed: ${names.join(", ")}`,
    {
      hint: "Install them without -e (`pip install PATH`) or uninstall them (`pip uninstall NAME`); an editable install's source lives outside the environment.",
      details: { prefix: env.prefix, packages: found },
    },
  );
}

let relocateScript: Promise<Buffer> | undefined;

/** `runtime/relocate-conda.py`, read once. */
function readRelocateScript(): Promise<Buffer> {
  relocateScript ??= readFile(envpackFile("runtime/relocate-conda.py"));
  return relocateScript;
}
