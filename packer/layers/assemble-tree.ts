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
    for (const entry of entries) {
      const path = rel === "" ? entry.name : posix.join(rel, entry.name);
      const source = join(layer, path);
      const target = join(dest, path);
      const existing = kinds.get(path);
      if (entry.isDirectory()) {
        if (existing === undefined) {
          await mkdir(target, { mode: (await lstat(source)).mode & 0o777 });
          kinds.set(path, "dir");
          count++;
        } else if (existing !== "dir")
          throw refuse(path, `a directory over another layer's ${existing}`);
        await walk(layer, path);
        continue;
      }
      if (existing !== undefined)
        throw refuse(path, `also in an earlier layer (as a ${existing})`);
      if (entry.isSymbolicLink()) {
        const linkTarget = await readlink(source);
        await symlink(linkTarget, target);
        kinds.set(path, "symlink");
        links.set(path, linkTarget);
      } else if (entry.isFile()) {
        await linkOrCopyFile(source, target);
        kinds.set(path, "file");
      } else {
        throw refuse(path, "not a file, directory or symlink");
      }
      count++;
    }
  };
  for (const layer of layerDirs) await walk(layer, "");
  // An entry under a symlink was refused above (its parent would be a symlink, not a directory);
  // a link's `..` after another layer's link is caught here.
  for (const [path, target] of links)
    if (resolveLinkTarget(path, target, (p) => links.get(p)) === null)
      throw refuse(path, `links outside the bundle (${target})`);
  return count;
}

async function linkOrCopyFile(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    await copyFile(source, target);
  }
}
