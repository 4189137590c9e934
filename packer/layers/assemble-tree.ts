// A bundle's tree assembled from its unpacked layers without copying them: a directory only one
// layer holds is one symlink to that layer's (shared, read-only) directory; where layers meet,
// directories are made, files hard-linked and symlinks recreated.

import {
  copyFile,
  link,
  lstat,
  mkdir,
  readdir,
  readlink,
  symlink,
} from "node:fs/promises";
import { dirname, join, posix, relative } from "node:path";
import type { Dirent } from "node:fs";
import {
  IntegrityError,
  resolveLinkTarget,
  settleAll,
} from "../../src/core/light.js";

/** Options of {@link assembleTree}. */
export interface AssembleTreeOptions {
  /**
   * Directories (tree-relative) made for real even when one layer holds them: those holding
   * files changed after assembly (a Conda prefix's relocation targets and their ancestors).
   * `.envpack` (the completion marker's) and every `node_modules` (where tools write caches, as in
   * one tree) always are.
   */
  realDirs?: ReadonlySet<string> | undefined;
  /**
   * Indexes (into the layer list) of the layers whose directories may be linked whole (default:
   * none). Not the app's: node resolves a module from its real path, so the app's own files must
   * sit beside the packages' `node_modules`, not in the app layer's directory.
   */
  linkable?: ReadonlySet<number> | undefined;
  /**
   * A relocated base of some layers (their indexes in `layers`; see relocated-base.ts): an entry
   * only those layers hold is one symlink to the base's (files and symlinks included), so that a
   * program reached through the tree runs from the base, the prefix it was relocated to.
   */
  base?: { dir: string; layers: ReadonlySet<number> } | undefined;
}

type Kind = "dir" | "file" | "symlink";

/**
 * Fills the empty directory `dest` with the layers' entries. A path in two layers (other than a
 * directory in both), an entry under another layer's symlink, or a symlink of a made directory
 * that leaves the tree once every layer's links are in place is refused: layers are checked
 * alone when unpacked, this checks them together. A directory held by one `linkable` layer alone
 * (and not in `realDirs`) is a relative symlink to that layer's directory: its links resolve
 * inside that layer, which was checked alone, and a package there finds its dependencies beside
 * it as in one tree (a package's own path is the layer's). With a `base`, what only its layers
 * hold is a link to the base instead. Elsewhere
 * files are hard links (a copy where the file system refuses a link: another device), so a file
 * the app edits in place is refused by its mode, never changed for another bundle.
 * @returns the number of entries linked or made
 * @throws IntegrityError ENVPACK_INTEGRITY_UNSAFE_ENTRY naming the entry
 */
export async function assembleTree(
  layerDirs: readonly string[],
  dest: string,
  bundleName: string,
  options: AssembleTreeOptions = {},
): Promise<number> {
  const links = new Map<string, string>();
  /** Directories linked whole to one layer's. */
  const whole = new Set<string>();
  const realDirs = options.realDirs ?? new Set<string>();
  const isReal = (path: string) =>
    realDirs.has(path) ||
    path === ".envpack" ||
    posix.basename(path) === "node_modules";
  let count = 0;
  const refuse = (entry: string, reason: string): IntegrityError =>
    new IntegrityError(
      "ENVPACK_INTEGRITY_UNSAFE_ENTRY",
      `${bundleName}: unsafe entry ${JSON.stringify(entry)}: ${reason}`,
      {
        hint: "Do not use this bundle: its layers overlap or link outside its directory.",
        details: { entry, reason },
      },
    );
  /** `rel` is a directory in each of `layers` (indexes into layerDirs, in order). */
  const walk = async (rel: string, layers: number[]): Promise<void> => {
    const listed = await Promise.all(
      layers.map((i) =>
        readdir(join(layerDirs[i] as string, rel), { withFileTypes: true }),
      ),
    );
    const byName = new Map<string, Array<{ layer: number; entry: Dirent }>>();
    listed.forEach((entries, n) => {
      for (const entry of entries) {
        const holders = byName.get(entry.name) ?? [];
        holders.push({ layer: layers[n] as number, entry });
        byName.set(entry.name, holders);
      }
    });
    const names = [...byName.keys()].sort((a, b) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    // Decided in order (so the entry refused is always the same one); a directory's links and
    // symlinks are then made together, its subdirectories after them, side by side (a failure
    // is the first subdirectory's in order, as if walked one after another).
    const made: Array<Promise<void>> = [];
    const subdirs: Array<[string, number[]]> = [];
    for (const name of names) {
      const holders = byName.get(name) as Array<{
        layer: number;
        entry: Dirent;
      }>;
      const path = rel === "" ? name : posix.join(rel, name);
      const target = join(dest, path);
      const first = holders[0] as { layer: number; entry: Dirent };
      const kinds = holders.map((h) => kindOf(h.entry));
      const firstKind = kinds[0];
      if (firstKind === undefined)
        throw refuse(path, "not a file, directory or symlink");
      for (const kind of kinds.slice(1)) {
        if (firstKind !== "dir")
          throw refuse(path, `also in an earlier layer (as a ${firstKind})`);
        if (kind !== "dir")
          throw refuse(
            path,
            kind === undefined
              ? "not a file, directory or symlink"
              : `a ${kind} over another layer's directory`,
          );
      }
      const source = join(layerDirs[first.layer] as string, path);
      count++;
      const base = options.base;
      if (
        base !== undefined &&
        holders.every((h) => base.layers.has(h.layer)) &&
        !(firstKind === "dir" && isReal(path))
      ) {
        // Checked with the base's layers when it was assembled; `..` out of it is refused below.
        if (firstKind !== "file") whole.add(path);
        made.push(
          symlink(relative(dirname(target), join(base.dir, path)), target),
        );
        continue;
      }
      if (firstKind === "dir") {
        if (
          holders.length === 1 &&
          options.linkable?.has(first.layer) === true &&
          !isReal(path)
        ) {
          whole.add(path);
          made.push(symlink(relative(dirname(target), source), target));
          continue;
        }
        made.push(
          lstat(source).then((info) =>
            // Writable for the owner: relocation replaces files here, the marker is written.
            mkdir(target, { mode: (info.mode & 0o777) | 0o700 }),
          ),
        );
        subdirs.push([path, holders.map((h) => h.layer)]);
      } else if (firstKind === "symlink") {
        made.push(
          readlink(source).then((linkTarget) => {
            links.set(path, linkTarget);
            return symlink(linkTarget, target);
          }),
        );
      } else {
        made.push(linkOrCopyFile(source, target));
      }
    }
    await settleAll(made);
    await settleAll(subdirs.map(([path, holders]) => walk(path, holders)));
  };
  await walk(
    "",
    layerDirs.map((_, i) => i),
  );
  // An entry under a symlink was refused above (its parent would be a symlink, not a directory);
  // a link's `..` after another layer's link is caught here. Links inside a directory linked
  // whole resolve inside that one layer (checked alone when it was unpacked).
  // Checked in path order: the link refused is the same one however the walks interleaved.
  for (const [path, target] of [...links].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    if (resolveLinkTarget(path, target, (p) => links.get(p)) === null)
      throw refuse(path, `links outside the bundle (${target})`);
    // Inside a linked directory `..` is the layer's parent, and that layer's own links are not
    // listed here: a link may enter one, never climb back out of it.
    if (climbsOutOf(whole, path, target))
      throw refuse(
        path,
        `climbs out of ${JSON.stringify(target)}, a directory linked from one layer`,
      );
  }
  return count;
}

/** Whether `target` (of the link at `path`) takes `..` once inside a directory of `whole`. */
function climbsOutOf(
  whole: ReadonlySet<string>,
  path: string,
  target: string,
): boolean {
  const parts =
    posix.dirname(path) === "." ? [] : posix.dirname(path).split("/");
  let inside = false;
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (inside) return true;
      parts.pop();
      continue;
    }
    parts.push(part);
    if (whole.has(parts.join("/"))) inside = true;
  }
  return false;
}

function kindOf(entry: Dirent): Kind | undefined {
  if (entry.isDirectory()) return "dir";
  if (entry.isSymbolicLink()) return "symlink";
  if (entry.isFile()) return "file";
  return undefined;
}

async function linkOrCopyFile(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    await copyFile(source, target);
  }
}
