// Reading a layered bundle from disk: its index (told from a single-blob bundle by its first
// byte, verified against its digest) and its layers, which lie beside it.

import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  IntegrityError,
  digestOf,
  isNotFound,
  type Digest,
} from "../../src/core/light.js";
import {
  looksLikeBundleIndex,
  parseBundleIndex,
  type BundleIndex,
} from "./bundle-index.js";

/** Where unpacked layers live inside an environments directory. */
export const LAYERS_DIR = "layers";

/** An index is a few hundred bytes; a file larger than this is a single-blob bundle. */
const MAX_INDEX_BYTES = 64 * 1024;

/**
 * The index of a layered bundle file, verified against `digest`; undefined when the file is a
 * single-blob bundle (format 2), which its unpacker checks itself.
 * @throws IntegrityError ENVPACK_INTEGRITY_DIGEST_MISMATCH, ENVPACK_INTEGRITY_CORRUPT_ARCHIVE
 */
export async function readLayeredIndex(
  file: string,
  digest: Digest,
): Promise<BundleIndex | undefined> {
  if ((await stat(file)).size > MAX_INDEX_BYTES) return undefined;
  const bytes = await readFile(file);
  if (!looksLikeBundleIndex(bytes)) return undefined;
  const actual = digestOf(bytes);
  if (actual !== digest)
    throw new IntegrityError(
      "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
      `${basename(file)} hashes to ${actual}, expected ${digest}`,
      {
        hint: "The bundle was corrupted in transit or storage; fetch or build it again.",
        details: { file },
      },
    );
  return parseBundleIndex(bytes, basename(file));
}

/**
 * A layer's file beside its index: `<hex>.tar.zst` or `<hex>` (as a cache stores blobs).
 * @throws IntegrityError ENVPACK_INTEGRITY_CORRUPT_ARCHIVE when neither exists
 */
export async function layerBeside(
  index: string,
  digest: Digest,
): Promise<string> {
  const hex = digest.slice("sha256:".length);
  for (const name of [`${hex}.tar.zst`, hex]) {
    const path = join(dirname(index), name);
    try {
      if ((await stat(path)).isFile()) return path;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  throw new IntegrityError(
    "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE",
    `${basename(index)}: its layer ${digest} is not beside it`,
    {
      hint: "Copy or pull the bundle with all its layers (`envpack build --out`, `envpack registry pull`).",
      details: { file: index, layer: digest },
    },
  );
}
