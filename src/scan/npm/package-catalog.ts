// What the scan knows about installed npm packages: where each lives, its metadata, its integrity.

import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import { createHash } from "node:crypto";
import { isNotFound, namesIfPresent, sha256File } from "../../core/light.js";

/** One installed package, keyed by its real directory. */
export interface InstalledPackage {
  /** Real (symlink-free) absolute directory. */
  dir: string;
  name: string;
  version: string;
  /** Reached through a symlink to a directory outside any node_modules (workspaces, `file:` links). */
  link: boolean;
  /** Declared run-time dependencies, in declaration order. */
  dependencies: DeclaredDependency[];
  os?: string[];
  cpu?: string[];
  libc?: string[];
  native: boolean;
}

/** A dependency as package.json declares it. */
export interface DeclaredDependency {
  name: string;
  /** From `optionalDependencies`, or an optional peer. */
  optional: boolean;
  peer: boolean;
}

interface PackageJson {
  name?: unknown;
  version?: unknown;
  dependencies?: unknown;
  optionalDependencies?: unknown;
  peerDependencies?: unknown;
  peerDependenciesMeta?: unknown;
  os?: unknown;
  cpu?: unknown;
  libc?: unknown;
  gypfile?: unknown;
  scripts?: unknown;
}

const NODE_MODULES = `${sep}node_modules${sep}`;
const NATIVE_HELPERS = new Set([
  "node-gyp-build",
  "bindings",
  "prebuild-install",
  "node-pre-gyp",
  "@mapbox/node-pre-gyp",
]);

/** Caches package metadata and lockfile integrity for one scan. */
export class PackageCatalog {
  readonly #packages = new Map<string, Promise<InstalledPackage | null>>();
  readonly #lockfiles = new Map<string, Promise<Map<string, string>>>();
  readonly #links = new Map<string, string>();
  /** node_modules directories probed by findInstalled → whether they exist. */
  readonly #modulesDirs = new Map<string, boolean>();
  /** Candidate package directories probed by findInstalled → their real directory, or null. */
  readonly #installed = new Map<string, string | null>();

  /**
   * The package directory a file under `node_modules` belongs to (`…/node_modules/@s/n` for
   * `…/node_modules/@s/n/lib/x.js`), or null for a file outside any node_modules.
   */
  packageDirOf(file: string): string | null {
    const at = file.lastIndexOf(NODE_MODULES);
    if (at < 0) return null;
    const start = at + NODE_MODULES.length;
    const parts = file.slice(start).split(sep);
    const count = parts[0]?.startsWith("@") ? 2 : 1;
    if (parts.length <= count) return null;
    return file.slice(0, start) + parts.slice(0, count).join(sep);
  }

  /** Reads a package's metadata once; null when `dir` holds no usable package.json. */
  read(dir: string, link = false): Promise<InstalledPackage | null> {
    let pending = this.#packages.get(dir);
    if (pending === undefined) {
      pending = readPackage(dir, link);
      this.#packages.set(dir, pending);
    }
    return pending;
  }

  /** Records a package's metadata read by an earlier scan (a remembered closure), unless read already. */
  remember(dir: string, pkg: InstalledPackage | null): void {
    if (!this.#packages.has(dir)) this.#packages.set(dir, Promise.resolve(pkg));
  }

  /**
   * Finds `name` as Node would from inside `fromDir`: `node_modules/<name>` in `fromDir` and
   * each ancestor. Returns the real directory, or null when it is not installed.
   */
  async findInstalled(fromDir: string, name: string): Promise<string | null> {
    for (const dir of nodeModulesDirs(fromDir)) {
      const real = this.#installedIn(dir, name);
      if (real !== null) return real;
    }
    return null;
  }

  /**
   * The real directory of `name` installed in the node_modules directory `modules`, or null.
   * Probed once per scan (a scan asks for the same packages from hundreds of files, each probe
   * walking up the ancestors), synchronously: most candidates are misses, and a miss is an
   * answer here, not an exception with a stack, nor a thread-pool round trip. A node_modules
   * directory that does not exist answers every name without a probe of its own.
   */
  #installedIn(modules: string, name: string): string | null {
    let exists = this.#modulesDirs.get(modules);
    if (exists === undefined) {
      exists = statSync(modules, { throwIfNoEntry: false }) !== undefined;
      this.#modulesDirs.set(modules, exists);
    }
    if (!exists) return null;
    const candidate = join(modules, name);
    let real = this.#installed.get(candidate);
    if (real === undefined) {
      real = statSync(join(candidate, "package.json"), {
        throwIfNoEntry: false,
      })
        ? realpathSync.native(candidate)
        : null;
      this.#installed.set(candidate, real);
      if (real !== null && real !== candidate) this.#links.set(candidate, real);
    }
    return real;
  }

  /**
   * Symlinks through which installed packages were found (link path → real package
   * directory): pnpm's `node_modules/<name>` entries, workspace links. A bundle must recreate
   * them for Node to resolve as it did here.
   */
  get links(): ReadonlyMap<string, string> {
    return this.#links;
  }

  /** Records a link found by an earlier scan (a remembered traversal: see PackageTraversals). */
  addLink(link: string, real: string): void {
    this.#links.set(link, real);
  }

  /**
   * Installed package names visible from `fromDir` that start with `prefix` and end with
   * `suffix` — how `require(\`@scope/pkg-${platform}-${arch}\`)` finds its per-platform variant.
   */
  async findByPattern(
    fromDir: string,
    prefix: string,
    suffix: string,
  ): Promise<string[]> {
    const found = new Set<string>();
    const scope = prefix.startsWith("@")
      ? prefix.slice(0, prefix.indexOf("/") + 1)
      : "";
    if (prefix.startsWith("@") && scope === "") return [];
    for (const dir of nodeModulesDirs(fromDir)) {
      const names = await namesIfPresent(scope ? join(dir, scope) : dir);
      for (const name of names) {
        const full = scope + name;
        if (
          full.length >= prefix.length + suffix.length &&
          full.startsWith(prefix) &&
          full.endsWith(suffix)
        ) {
          found.add(full);
        }
      }
    }
    return [...found].sort();
  }

  /**
   * The integrity npm recorded for the package installed at `installDir`, from the nearest
   * `package-lock.json`, `npm-shrinkwrap.json` or hidden `node_modules/.package-lock.json`.
   */
  async lockfileIntegrity(installDir: string): Promise<string | null> {
    const at = installDir.indexOf(NODE_MODULES);
    if (at < 0) return null;
    const projectDir = installDir.slice(0, at);
    const key = installDir
      .slice(projectDir.length + 1)
      .split(sep)
      .join("/");
    let pending = this.#lockfiles.get(projectDir);
    if (pending === undefined) {
      pending = readLockfiles(projectDir);
      this.#lockfiles.set(projectDir, pending);
    }
    return (await pending).get(key) ?? null;
  }
}

/** `sha256:` over every file of a package (path, mode, content), excluding nested node_modules. */
export async function packageTreeDigest(dir: string): Promise<string> {
  const lines: string[] = [];
  async function walk(current: string, rel: string): Promise<void> {
    const entries = await readdir(current, { withFileTypes: true });
    await Promise.all(
      entries.map(async (entry) => {
        if (entry.name === "node_modules") return;
        const path = join(current, entry.name);
        const relPath = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) return walk(path, relPath);
        if (entry.isSymbolicLink()) return void lines.push(`l ${relPath}`);
        if (!entry.isFile()) return;
        const info = await stat(path);
        lines.push(
          `${info.mode & 0o111 ? "x" : "f"} ${relPath} ${await sha256File(path)}`,
        );
      }),
    );
  }
  await walk(dir, "");
  lines.sort();
  return `sha256:${createHash("sha256").update(lines.join("\n")).digest("hex")}`;
}

async function readPackage(
  dir: string,
  link: boolean,
): Promise<InstalledPackage | null> {
  let json: PackageJson;
  try {
    json = JSON.parse(
      // Synchronous, as the probes above: a small file from the page cache.
      readFileSync(join(dir, "package.json"), "utf8"),
    ) as PackageJson;
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return null;
    throw error;
  }
  const name = typeof json.name === "string" ? json.name : basename(dir);
  const version = typeof json.version === "string" ? json.version : "0.0.0";
  const optional = stringKeys(json.optionalDependencies);
  const peerMeta = (json.peerDependenciesMeta ?? {}) as Record<
    string,
    { optional?: boolean } | undefined
  >;
  const dependencies: DeclaredDependency[] = [];
  const seen = new Set<string>();
  const add = (dep: string, isOptional: boolean, peer: boolean) => {
    if (seen.has(dep)) return;
    seen.add(dep);
    dependencies.push({ name: dep, optional: isOptional, peer });
  };
  for (const dep of stringKeys(json.dependencies))
    add(dep, optional.includes(dep), false);
  for (const dep of optional) add(dep, true, false);
  for (const dep of stringKeys(json.peerDependencies))
    add(dep, peerMeta[dep]?.optional === true, true);
  const scripts = (json.scripts ?? {}) as Record<string, unknown>;
  const native =
    json.gypfile === true ||
    typeof scripts.install === "string" ||
    dependencies.some((d) => NATIVE_HELPERS.has(d.name)) ||
    existsSync(join(dir, "binding.gyp"));
  return {
    dir,
    name,
    version,
    link,
    dependencies,
    native,
    ...(stringList(json.os) ? { os: stringList(json.os) } : {}),
    ...(stringList(json.cpu) ? { cpu: stringList(json.cpu) } : {}),
    ...(stringList(json.libc) ? { libc: stringList(json.libc) } : {}),
  };
}

async function readLockfiles(projectDir: string): Promise<Map<string, string>> {
  const integrity = new Map<string, string>();
  for (const name of [
    "node_modules/.package-lock.json",
    "npm-shrinkwrap.json",
    "package-lock.json",
  ]) {
    let lock: { packages?: Record<string, { integrity?: unknown }> };
    try {
      // Synchronous, as readPackage: small files, read once per scan.
      lock = JSON.parse(
        readFileSync(join(projectDir, name), "utf8"),
      ) as typeof lock;
    } catch (error) {
      if (isNotFound(error) || error instanceof SyntaxError) continue;
      throw error;
    }
    for (const [key, entry] of Object.entries(lock.packages ?? {})) {
      if (typeof entry.integrity === "string")
        integrity.set(key, entry.integrity);
    }
  }
  return integrity;
}

/** `fromDir/node_modules` and every ancestor's, nearest first (skipping `node_modules/node_modules`). */
function nodeModulesDirs(fromDir: string): string[] {
  const dirs: string[] = [];
  let current = fromDir;
  for (;;) {
    if (basename(current) !== "node_modules")
      dirs.push(join(current, "node_modules"));
    const parent = dirname(current);
    if (parent === current) return dirs;
    current = parent;
  }
}

function stringKeys(value: unknown): string[] {
  return value !== null && typeof value === "object" ? Object.keys(value) : [];
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === "string")
    ? (value as string[])
    : undefined;
}
