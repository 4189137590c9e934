// `npm run build`, after tsc: writes dist/packer/code-digest.json, the digest of the code that
// decides a bundle's bytes (the compiled packer and the api modules that plan and compile a
// bundle's entries, the Conda prefix model, the files shipped from runtime/, the native .pyc source
// hash). The builder identity (src/api/bundle-cache.ts) carries it, so a cache built by other
// packer code misses instead of serving layers that code would not write. Read once per process
// at run time; computed here, never on a cache hit.
//
// Usage: node scripts/packer-digest.mjs [root]   (root: the repository, built; default: this one)

import { createHash } from "node:crypto";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";

const root = process.argv[2] ?? join(import.meta.dirname, "..");
/** Where the digest is written, under dist/packer/ (which the package ships). */
const OUTPUT = join("dist", "packer", "code-digest.json");

/** What is hashed: directories (every code file under them) and single files, from the root. */
const SOURCES = [
  { dir: join("dist", "packer"), code: /\.(c|m)?js$/ },
  { dir: join("dist", "src", "conda"), code: /\.(c|m)?js$/ },
  { file: join("dist", "src", "api", "plan-bundle.js") },
  { file: join("dist", "src", "api", "compile-app.js") },
  { dir: "runtime", code: /./ },
  { file: join("native", "source-hash.c") },
];

/** Files of `dir` (recursively) whose names match `code`, as paths from the root. */
async function codeFiles(dir, code) {
  const entries = await readdir(join(root, dir), {
    recursive: true,
    withFileTypes: true,
  });
  return entries
    .filter((e) => e.isFile() && code.test(e.name))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

const files = [];
for (const source of SOURCES)
  if (source.file !== undefined) files.push(source.file);
  else files.push(...(await codeFiles(source.dir, source.code)));
const hash = createHash("sha256");
for (const file of files
  .filter((f) => f !== OUTPUT)
  .map((f) => f.split(sep).join("/"))
  .sort()) {
  const bytes = await readFile(join(root, file));
  // Name and length before the bytes: no two sets of files hash alike.
  hash.update(`${file}\0${bytes.length}\0`).update(bytes);
}
const digest = `sha256:${hash.digest("hex")}`;
await writeFile(
  join(root, OUTPUT),
  JSON.stringify({ digest, files: files.length }) + "\n",
);
