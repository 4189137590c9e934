// Package tree walks on disk: a JSON header on the first line, then every walk's lines as they are,
// so that thousands of paths read back as one string; and the walks a scan remembers between runs.

import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  canonicalJson,
  digestOf,
  isNotFound,
  writeFileAtomic,
} from "../core/light.js";
import {
  packageTrees,
  type PackageTrees,
  type PackageTreeWalk,
} from "../scan/light.js";
import { checkTreesAhead } from "./tree-checks.js";

/** Package directories with their walks (`null`: the directory was missing). */
export type Walks = Array<[dir: string, walk: PackageTreeWalk | null]>;

/** How a header lists walks: each with the length of its lines in the body. */
export type WalkHeaders = Array<
  [dir: string, strict: string, stamp: string, length: number] | [dir: string]
>;

/**
 * Writes `header` (plus `walks`' headers under `trees`) and the walks' lines as one text; without
 * `withBody`, the header line alone (its newline included), for a caller that holds the lines.
 */
export function encodeWalks(
  header: object,
  walks: Walks,
  withBody = true,
): string {
  const trees: WalkHeaders = walks.map(([dir, walk]) =>
    walk === null ? [dir] : [dir, walk.strict, walk.stamp, walk.lines.length],
  );
  const line = `${JSON.stringify({ ...header, trees })}\n`;
  return withBody
    ? line + walks.map(([, walk]) => walk?.lines ?? "").join("")
    : line;
}

/**
 * The header and walks of an {@link encodeWalks} text whose header has `format`; null when it
 * is another format, does not parse, or was cut short.
 */
export function decodeWalks<Header extends { format: string }>(
  text: string,
  format: string,
): { header: Header; walks: Walks } | null {
  const headerEnd = text.indexOf("\n");
  if (headerEnd === -1) return null;
  let header: Header & { trees?: WalkHeaders };
  try {
    header = JSON.parse(text.slice(0, headerEnd)) as Header & {
      trees?: WalkHeaders;
    };
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
  if (header?.format !== format || !Array.isArray(header.trees)) return null;
  let at = headerEnd + 1;
  const walks: Walks = [];
  for (const [dir, strict, stamp, length] of header.trees) {
    if (strict === undefined) {
      walks.push([dir, null]);
      continue;
    }
    if (
      stamp === undefined ||
      length === undefined ||
      at + length > text.length
    )
      return null;
    walks.push([dir, { strict, stamp, lines: text.slice(at, at + length) }]);
    at += length;
  }
  return at === text.length ? { header, walks } : null;
}

const SCAN_FORMAT = "envpack-scan-walks/1";

/**
 * The package trees of a scan of `entries` (resolved against `cwd`) with a cache: the walks the
 * last such scan remembered are taken again while every path they list has its stats (as a
 * build's fingerprint does), others are walked. `save` writes the walks this scan used when they
 * differ from the remembered ones.
 */
export async function rememberedTrees(
  cacheDir: string,
  entries: string[],
  cwd: string,
): Promise<{ trees: PackageTrees; save: () => Promise<void> }> {
  const key = digestOf(
    canonicalJson(entries.map((e) => resolve(cwd, e)).sort()),
  );
  const path = join(
    cacheDir,
    "scan",
    "walks",
    `${key.slice("sha256:".length)}.fp`,
  );
  const remembered = new Map<string, PackageTreeWalk>();
  let walks: Walks = [];
  try {
    walks = decodeWalks(await readFile(path, "utf8"), SCAN_FORMAT)?.walks ?? [];
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  for (const [dir, walk] of walks) if (walk !== null) remembered.set(dir, walk);
  // Checked on threads while the scan reads the app's own files.
  const inner = packageTrees(remembered, checkTreesAhead(walks).isUnchanged);
  const used = new Map<string, PackageTreeWalk>();
  const trees: PackageTrees = (dir) => {
    const walk = inner(dir);
    used.set(dir, walk);
    return walk;
  };
  const save = async () => {
    const same =
      used.size === remembered.size &&
      [...used].every(([dir, walk]) => remembered.get(dir) === walk);
    if (same) return;
    await writeFileAtomic(
      path,
      encodeWalks({ format: SCAN_FORMAT }, [...used]),
      { fsync: false },
    );
  };
  return { trees, save };
}
