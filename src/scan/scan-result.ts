// What a language scanner returns, and the small helpers every scanner shares.

import {
  closeSync,
  createReadStream,
  fstatSync,
  openSync,
  readFileSync,
} from "node:fs";
import { dirname, relative, sep } from "node:path";
import { createHash } from "node:crypto";
import type { AppFile, FileProblem, Manifest, OnEvent } from "../core/light.js";

/** A manifest before the dispatcher adds schema version, generator and input digest. */
export type ScanResult = Omit<
  Manifest,
  "schemaVersion" | "generator" | "inputDigest"
>;

/** A module a traced run imported, and the line outside the import system that asked for it. */
export interface TracedImport {
  /** Absolute dotted name. */
  module: string;
  /** Real path of the calling file. */
  file: string;
  /** 1-based line of the call. */
  line: number;
}

/** What a traced run touched (see `runTraced`). */
export interface TraceLog {
  /** Real paths of the modules it loaded and the files it opened. */
  paths: string[];
  /** Real paths of the directories the app listed (Python). */
  listed: string[];
  /** The imports it made, by calling line (Python). */
  imports: TracedImport[];
}

/** Options every language scanner takes; `entries` are absolute paths to existing files. */
export interface ScannerOptions {
  entries: string[];
  /**
   * JS: follow imports inside installed packages (default true). Off, packages are found from
   * the app's imports and closed over their declared dependencies without reading their files:
   * a quick scan whose input digest equals the full one's unless a package imports something it
   * does not declare.
   */
  parsePackages?: boolean | undefined;
  /**
   * Also ship what the app declares (package.json `dependencies`; requirements and pyproject for
   * Python) though no import reaches it, with reason `declared` (default true). Off: only the
   * import graph's closure.
   */
  declared?: boolean | undefined;
  /**
   * Real paths a traced run of the app loaded or opened: files of the app's project join as app
   * files and packages under node_modules as packages, with reason `traced` unless the analysis
   * reached them too.
   */
  traced?: string[] | undefined;
  /**
   * What no analysis can see, named by the user (besides `envpack.include` in the entry's
   * package.json): installed package names, or globs of app files relative to the project (the
   * entry's package.json directory). Each ships with reason `included`.
   */
  include?: string[] | undefined;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/** File extensions scanned as JavaScript/TypeScript. */
export const JS_EXTENSIONS = [
  ".ts",
  ".tsx",
  ".mts",
  ".cts",
  ".js",
  ".mjs",
  ".cjs",
  ".jsx",
];

/** Files larger than this are listed but not parsed (`too-large`). */
export const MAX_SOURCE_BYTES = 8 * 1024 * 1024;

/** A file read for analysis: its bytes' hash and size, its text when it is text, or why not. */
export interface ReadSource {
  sha256: string;
  size: number;
  text?: string;
  problem?: FileProblem;
}

/**
 * Reads a source file once: hash, size and text, refusing binary and huge files as findings.
 * Without `hash` (a package's file, whose bytes the manifest does not record), sha256 is "".
 */
export async function readSource(
  path: string,
  hash = true,
): Promise<ReadSource> {
  // Synchronous for source-sized files: the scan reads hundreds of them, each in microseconds
  // from the page cache, where an awaited read costs several thread-pool round trips.
  const fd = openSync(path, "r");
  let size: number;
  let bytes: Buffer;
  try {
    size = fstatSync(fd).size;
    if (size > MAX_SOURCE_BYTES) return await tooLarge(path, size);
    bytes = readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  const sha256 = hash ? createHash("sha256").update(bytes).digest("hex") : "";
  if (bytes.includes(0)) {
    return {
      sha256,
      size: bytes.length,
      problem: {
        reason: "binary",
        message: "contains NUL bytes; not a source file",
      },
    };
  }
  return { sha256, size: bytes.length, text: bytes.toString("utf8") };
}

/**
 * The text of a package's source file: what {@link readSource} without `hash` gives as `text`
 * (undefined for a binary file or one over the source limit), decoded by Node as it reads, with
 * no Buffer in between and no hashing of a file too large to parse.
 */
export async function readSourceText(
  path: string,
): Promise<string | undefined> {
  const fd = openSync(path, "r");
  try {
    if (fstatSync(fd).size > MAX_SOURCE_BYTES) return undefined;
    const text = readFileSync(fd, "utf8");
    // UTF-8 decodes a NUL byte, and nothing else, to U+0000.
    return text.includes("\0") ? undefined : text;
  } finally {
    closeSync(fd);
  }
}

/** A file over the source limit: hashed as a stream, not read whole. */
async function tooLarge(path: string, size: number): Promise<ReadSource> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path))
    hash.update(chunk as Buffer);
  return {
    sha256: hash.digest("hex"),
    size,
    problem: {
      reason: "too-large",
      message: `${size} bytes is over the ${MAX_SOURCE_BYTES}-byte limit for source files`,
    },
  };
}

/** `path` relative to `root`, with `/` separators. */
export function toPosixRelative(root: string, path: string): string {
  const rel = relative(root, path);
  return sep === "/" ? rel : rel.split(sep).join("/");
}

/** The deepest directory containing every given absolute path (files count by their directory). */
export function commonDirectory(paths: string[]): string {
  const dirs = paths.map((p) => dirname(p).split(sep));
  const first = dirs[0];
  if (first === undefined)
    throw new Error("commonDirectory needs at least one path");
  let length = first.length;
  for (const parts of dirs.slice(1)) {
    let i = 0;
    while (i < length && i < parts.length && parts[i] === first[i]) i++;
    length = i;
  }
  return first.slice(0, length).join(sep) || sep;
}

/** Builds an app-file record. */
export function appFile(
  path: string,
  source: ReadSource,
  role: AppFile["role"],
): AppFile {
  return {
    path,
    sha256: source.sha256,
    size: source.size,
    role,
    ...(source.problem ? { problem: source.problem } : {}),
  };
}
