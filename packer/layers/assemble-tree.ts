// A bundle's tree assembled from its unpacked layers without copying them: directories are made,
// files hard-linked to the layer's (shared, read-only) files, symlinks recreated.

import {
  copyFile,
  link,
  lstat,
  mkdir,
  readdir,
  readlink,
  symlink,
} from "node:fs/promises";
import { join, posix } from "node:path";
import { IntegrityError, resolveLinkTarget } from "../../src/core/index.js";

/**
 * Fills the empty directory `dest` with the layers' entries, in order. A path in two layers
 * (other than a directory in both), an entry under another layer's symlink, or a symlink that
 * leaves the tree once every layer's links are in place is refused: layers are checked alone
 * when unpacked, this checks them together. Files are hard links (a copy where the file system
 * refuses a link: another device), so a file the app edits in place is refused by its mode,
 * never changed for another bundle.
 * @returns the number of entries linked or made
 * @throws IntegrityError ENVPACK_INTEGRITY_UNSAFE_ENTRY naming the entry
 */
export async function assembleTree(
  layerDirs: readonly string[],
  dest: string,
  bundleName: string,
): Promise<number> {
  const kinds = new Map<string, "dir" | "file" | "symlink">();
  const links = new Map<string, string>();
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
  const walk = async (layer: string, rel: string): Promise<void> => {
    const entries = await readdir(join(layer, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    // Decided in order (so the entry refused is always the same one); a directory's links and
    // symlinks are then made together, its subdirectories after them.
    const made: Array<Promise<void>> = [];
    const subdirs: string[] = [];
    for (const entry of entries) {
      const path = rel === "" ? entry.name : posix.join(rel, entry.name);
      const source = join(layer, path);
      const target = join(dest, path);
      const existing = kinds.get(path);
      if (entry.isDirectory()) {
        if (existing === undefined) {
          kinds.set(path, "dir");
          count++;
          made.push(
            lstat(source).then((info) =>
              mkdir(target, { mode: info.mode & 0o777 }),
            ),
          );
        } else if (existing !== "dir")
          throw refuse(path, `a directory over another layer's ${existing}`);
        subdirs.push(path);
        continue;
      }
      if (existing !== undefined)
        throw refuse(path, `also in an earlier layer (as a ${existing})`);
      if (entry.isSymbolicLink()) {
        kinds.set(path, "symlink");
        made.push(
          readlink(source).then((linkTarget) => {
            links.set(path, linkTarget);
            return symlink(linkTarget, target);
          }),
        );
      } else if (entry.isFile()) {
        kinds.set(path, "file");
        made.push(linkOrCopyFile(source, target));
      } else {
        throw refuse(path, "not a file, directory or symlink");
      }
      count++;
    }
    await settleAll(made);
    for (const path of subdirs) await walk(layer, path);
  };
  for (const layer of layerDirs) await walk(layer, "");
  // An entry under a symlink was refused above (its parent would be a symlink, not a directory);
  // a link's `..` after another layer's link is caught here.
  for (const [path, target] of links)
    if (resolveLinkTarget(path, target, (p) => links.get(p)) === null)
      throw refuse(path, `links outside the bundle (${target})`);
  return count;
}

/** Waits for every promise; the first failure (in order) is thrown once none is still running. */
async function settleAll(pending: Array<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(pending);
  for (const result of results)
    if (result.status === "rejected") throw result.reason;
}

async function linkOrCopyFile(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    await copyFile(source, target);
  }
}
