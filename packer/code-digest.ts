// The digest of the code that decides a bundle's bytes: the compiled packer and the api modules
// that plan and compile a bundle's entries, the Conda prefix model, the files shipped from
// runtime/, the native .pyc source hash. `npm run build` records it in dist/packer/code-digest.json
// (scripts/packer-digest.mjs); a tree compiled by plain `tsc` has no record and computes it here.

import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";

/** Where `npm run build` records the digest, from the package root (dist/packer/ ships). */
export const CODE_DIGEST_FILE = join("dist", "packer", "code-digest.json");

/** What is hashed: directories (every code file under them) and single files, from the root. */
const SOURCES: Array<{ dir: string; code: RegExp } | { file: string }> = [
  { dir: join("dist", "packer"), code: /\.(c|m)?js$/ },
  { dir: join("dist", "src", "conda"), code: /\.(c|m)?js$/ },
  { file: join("dist", "src", "api", "plan-bundle.js") },
  { file: join("dist", "src", "api", "compile-app.js") },
  { dir: "runtime", code: /./ },
  { file: join("native", "source-hash.c") },
];

/**
 * `sha256:<hex>` over the packer's code under the package root `root` (built by tsc at least):
 * each file's path from the root, its length and its bytes, in path order.
 * @throws the file system's error (ENOENT) for a missing source
 */
export function packerCodeDigest(root: string): string {
  const files: string[] = [];
  for (const source of SOURCES) {
    if ("file" in source) {
      files.push(source.file);
      continue;
    }
    for (const entry of readdirSync(join(root, source.dir), {
      recursive: true,
      withFileTypes: true,
    }))
      if (entry.isFile() && source.code.test(entry.name))
        files.push(relative(root, join(entry.parentPath, entry.name)));
  }
  const hash = createHash("sha256");
  for (const file of files
    .filter((f) => f !== CODE_DIGEST_FILE)
    .map((f) => f.split(sep).join("/"))
    .sort()) {
    const bytes = readFileSync(join(root, file));
    // Name and length before the bytes: no two sets of files hash alike.
    hash.update(`${file}\0${bytes.length}\0`).update(bytes);
  }
  return `sha256:${hash.digest("hex")}`;
}
