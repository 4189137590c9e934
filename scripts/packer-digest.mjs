// `npm run build`, after tsc: writes dist/packer/code-digest.json, the digest of the code that
// decides a bundle's bytes (packer/code-digest.ts says what it covers). The builder identity
// (src/api/bundle-cache.ts) carries it, so a cache built by other packer code misses instead of
// serving layers that code would not write. Read once per process at run time; computed here,
// never on a cache hit (a tree compiled by plain `tsc` computes it once per process instead).
//
// Usage: node scripts/packer-digest.mjs [root]   (root: the repository, built; default: this one)

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CODE_DIGEST_FILE,
  packerCodeDigest,
} from "../dist/packer/code-digest.js";

const root = process.argv[2] ?? join(import.meta.dirname, "..");
const digest = packerCodeDigest(root);
await writeFile(
  join(root, CODE_DIGEST_FILE),
  JSON.stringify({ digest }) + "\n",
);
