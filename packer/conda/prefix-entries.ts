// The bundle entry of each file of a Conda prefix, as conda-pack decides it: where its bytes come
// from, placeholders put back into prefix copies, and what the relocation record lists.

import {
  closeSync,
  lstatSync,
  openSync,
  readFileSync,
  readSync,
  readlinkSync,
  statSync,
} from "node:fs";
import { isAbsolute, join, posix, relative } from "node:path";
import { sha256Hex, type WarningCode } from "../../src/core/index.js";
import type { CondaMetaRecord, ManagedFile } from "../../src/conda/index.js";
import {
  isShebangWith,
  isUtf8,
  replaceAll,
  restoreBinaryPlaceholder,
} from "./prefix-bytes.js";
import type { PrefixItemKind } from "./prefix-walk.js";
import { rewriteCondaMeta } from "./conda-meta-json.js";

/**
 * The placeholder envpack puts in unmanaged text files (pip-installed scripts, `conda-meta/history`)
 * in place of the build prefix, so that the bundle never holds the build machine's path.
 */
export const UNMANAGED_PLACEHOLDER = "/@envpack-prefix-placeholder@";

/** One bundle entry, in the shape `writeBundle` takes. */
export interface CondaBundleEntry {
  /** POSIX path relative to the bundle root. */
  path: string;
  type: "file" | "directory" | "symlink";
  /** Absolute file to copy the bytes from. */
  source?: string;
  /** The bytes, when they differ from any file on disk. */
  data?: Uint8Array;
  executable?: boolean;
  linkTarget?: string;
  /** The interpreter's package is the runtime layer; the rest of the prefix the packages layer. */
  layer?: "runtime" | "packages";
  /** Byte code the packer settles against its source (settle-byte-code.ts). */
  pyc?: { source: string; rewritten?: boolean };
}

/** One file the relocation script rewrites. */
export interface RelocationFile {
  path: string;
  /** `text`: plain substitution; `binary`: NUL-terminated runs, length kept by NUL padding. */
  mode: "text" | "binary";
  /** sha256 (hex) of the bytes as packed, placeholders in them. */
  sha256: string;
  /** Set when it differs from the record's default placeholder. */
  placeholder?: string;
  /** The first line is a `#!` line naming something under the prefix. */
  shebang?: true;
}

/** A conda-meta record with the files it puts in the prefix. */
export interface CondaPackage extends CondaMetaRecord {
  files: ManagedFile[];
  /** False when the package cache no longer holds the package. */
  cached: boolean;
}

/** What the decisions of one plan share: the prefix, its walk, and what they add to. */
export interface Context {
  /** The directory read. */
  prefix: string;
  /** The prefix path its files embed. */
  embedded: string;
  items: Map<string, PrefixItemKind>;
  out: Map<string, CondaBundleEntry>;
  relocation: RelocationFile[];
  warn: (
    code: WarningCode,
    message: string,
    data: Record<string, unknown>,
  ) => void;
}

/** The entries of a conda package's files and of its record, as conda-pack packs it. */
export function addPackage(ctx: Context, pkg: CondaPackage): void {
  for (const file of pkg.files) {
    if (file.pathType === "pyc" && !ctx.items.has(file.target)) continue;
    addManaged(ctx, pkg, file);
  }
  ctx.out.set(pkg.metaPath, {
    path: pkg.metaPath,
    type: "file",
    data: Buffer.from(rewriteCondaMeta(pkg.json)),
  });
}

export function addManaged(
  ctx: Context,
  pkg: CondaPackage,
  file: ManagedFile,
): void {
  const { prefix, items, out } = ctx;
  const target = file.target;
  const kind = items.get(target);
  if (file.pathType === "directory" || kind === "empty-directory") {
    out.set(target, { path: target, type: "directory" });
    return;
  }
  if (kind === "symlink" || file.pathType === "softlink") {
    addSymlink(ctx, target);
    return;
  }
  if (file.pathType === "unknown" || file.pathType === "pyc" || !pkg.cached) {
    if (file.placeholder === undefined) {
      addUnmanaged(ctx, target, "file");
      return;
    }
  }
  // A walked path (`kind` known) is made of readdir names under the resolved prefix: concatenated,
  // as path.join would give it, without its normalising, which cost a planner thousands of calls.
  const inPrefix =
    kind !== undefined && !prefix.endsWith("/")
      ? `${prefix}/${target}`
      : join(prefix, target);
  // Without a placeholder the prefix's copy is what conda linked (usually a hardlink to the
  // cache's): packed as it is, as conda-pack does.
  if (file.placeholder === undefined) {
    out.set(target, { path: target, type: "file", source: inPrefix });
    return;
  }
  const mode = file.fileMode ?? "text";
  const placeholder = Buffer.from(file.placeholder);
  if (file.cacheFile !== undefined && isFile(file.cacheFile)) {
    const cached = readFileSync(file.cacheFile);
    const sha256 = sha256Hex(cached);
    if (file.sha256 === undefined || file.sha256 === sha256) {
      out.set(target, { path: target, type: "file", source: file.cacheFile });
      pushRelocation(ctx, target, mode, sha256, file.placeholder, cached);
      return;
    }
  }
  // Not in the cache (or the cache copy is damaged): put the placeholder back into the prefix's copy.
  const data = readFileSync(inPrefix);
  const restored =
    mode === "text"
      ? replaceAll(data, Buffer.from(ctx.embedded), placeholder)
      : restoreBinaryPlaceholder(data, Buffer.from(ctx.embedded), placeholder);
  if (restored === undefined) {
    ctx.warn(
      "ENVPACK_WARN_CONDA_UNRELOCATABLE",
      `${target} (${pkg.record.name}): its binary prefix cannot be turned back into the placeholder; it keeps ${prefix}`,
      { path: target, package: pkg.record.name },
    );
    out.set(target, { path: target, type: "file", source: inPrefix });
    return;
  }
  const sha256 = sha256Hex(restored);
  if (file.sha256 !== undefined && file.sha256 !== sha256)
    ctx.warn(
      "ENVPACK_WARN_CONDA_MODIFIED_FILE",
      `${target} (${pkg.record.name}) differs from the package's own file; packing the prefix's copy`,
      { path: target, package: pkg.record.name },
    );
  out.set(target, {
    path: target,
    type: "file",
    data: restored,
    executable: isExecutable(inPrefix),
  });
  pushRelocation(ctx, target, mode, sha256, file.placeholder, restored);
}

export function addUnmanaged(
  ctx: Context,
  target: string,
  kind: PrefixItemKind,
): void {
  const { prefix, out } = ctx;
  if (kind === "empty-directory") {
    out.set(target, { path: target, type: "directory" });
    return;
  }
  if (kind === "symlink") {
    addSymlink(ctx, target);
    return;
  }
  const source = join(prefix, target);
  const prefixBytes = Buffer.from(ctx.embedded);
  // Byte code embeds its source's absolute path: packing it would tie the bundle to the build
  // path (and it cannot be rewritten in place); Python recompiles it from the packed source.
  if (target.endsWith(".pyc") && headHolds(source, prefixBytes)) return;
  const data = readFileSync(source);
  if (!data.includes(prefixBytes)) {
    out.set(target, { path: target, type: "file", source });
    return;
  }
  if (target.endsWith(".pyc")) return;
  if (!isUtf8(data)) {
    ctx.warn(
      "ENVPACK_WARN_CONDA_UNRELOCATABLE",
      `${target} is a binary file conda does not manage and holds ${prefix}; it is packed unchanged and not relocated`,
      { path: target },
    );
    out.set(target, { path: target, type: "file", source });
    return;
  }
  const placeholder = Buffer.from(UNMANAGED_PLACEHOLDER);
  const normalised = replaceAll(data, prefixBytes, placeholder);
  out.set(target, {
    path: target,
    type: "file",
    data: normalised,
    executable: isExecutable(source),
  });
  pushRelocation(
    ctx,
    target,
    "text",
    sha256Hex(normalised),
    UNMANAGED_PLACEHOLDER,
    normalised,
  );
}

/** How much of a `.pyc` is read first: its source path is usually within its first few KB. */
const HEAD_SIZE = 8 << 10;
const head = Buffer.allocUnsafe(HEAD_SIZE);

/**
 * Whether the start of a file holds `needle`: most byte code names its source (the prefix) in its
 * first code object, so a `.pyc` left out is decided without reading the whole file; a miss here
 * is decided by reading the whole file. Synchronous, as the rest of the plan's decisions.
 */
function headHolds(path: string, needle: Buffer): boolean {
  const file = openSync(path, "r");
  try {
    const got = readSync(file, head, 0, HEAD_SIZE, 0);
    return head.subarray(0, got).includes(needle);
  } finally {
    closeSync(file);
  }
}

function pushRelocation(
  ctx: Context,
  path: string,
  mode: "text" | "binary",
  sha256: string,
  placeholder: string,
  data: Buffer,
): void {
  ctx.relocation.push({
    path,
    mode,
    sha256,
    placeholder,
    ...(mode === "text" && isShebangWith(data, Buffer.from(placeholder))
      ? { shebang: true as const }
      : {}),
  });
}

/** A symlink, made relative when it points into the prefix by absolute path; links leaving the prefix are dropped. */
function addSymlink(ctx: Context, target: string): void {
  const { prefix } = ctx;
  const link = readlinkSync(join(prefix, target));
  const dir = posix.dirname(target);
  let linkTarget = link;
  if (isAbsolute(link)) {
    const base = isInside(ctx.embedded, link) ? ctx.embedded : prefix;
    const rel = relative(base, link).split("\\").join("/");
    linkTarget = posix.relative(dir, rel) || ".";
    if (rel.startsWith("../") || rel === ".." || isAbsolute(rel))
      linkTarget = link;
  }
  const resolved = posix.normalize(posix.join(dir, linkTarget));
  if (
    isAbsolute(linkTarget) ||
    resolved === ".." ||
    resolved.startsWith("../")
  ) {
    ctx.warn(
      "ENVPACK_WARN_CONDA_LINK_OUTSIDE",
      `${target} is a symlink to ${link}, outside the environment; it is left out`,
      { path: target, linkTarget: link },
    );
    return;
  }
  ctx.out.set(target, { path: target, type: "symlink", linkTarget });
}

/**
 * Synchronous on purpose: it runs once per managed file (thousands), where an awaited lstat costs
 * several times the system call; a missing file is an answer, not an exception.
 */
function isFile(path: string | undefined): boolean {
  return (
    path !== undefined &&
    lstatSync(path, { throwIfNoEntry: false })?.isFile() === true
  );
}

function isExecutable(path: string): boolean {
  return (statSync(path).mode & 0o111) !== 0;
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== ".." && !rel.startsWith("../") && !isAbsolute(rel);
}
