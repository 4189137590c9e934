// The compiler's outputs kept in the cache, one file per key (a digest of everything an output
// depends on), so a rebuild compiles only the app files that changed.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isNotFound, writeFileAtomic, type Digest } from "../core/light.js";

/** The stored form; another is read as absent. */
const FORMAT = "envpack-compiled/1";

interface StoredOutput {
  format: string;
  key: Digest;
  code: string;
}

/**
 * The output remembered under `key`, or null. A file that does not parse or names another key
 * (a damaged cache) is absent too: entries are written whole by rename, so a writer killed
 * half-way leaves only its temp file, never a short entry under the key.
 * @throws file-system errors other than a missing entry
 */
export function readCompiled(cacheDir: string, key: Digest): Buffer | null {
  let stored: StoredOutput;
  try {
    stored = JSON.parse(
      readFileSync(pathOf(cacheDir, key), "utf8"),
    ) as StoredOutput;
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return null;
    throw error;
  }
  return stored !== null &&
    stored.format === FORMAT &&
    stored.key === key &&
    typeof stored.code === "string"
    ? Buffer.from(stored.code)
    : null;
}

/** Remembers `data` (UTF-8 text) under `key`, atomically (without fsync: cheap to lose). */
export async function writeCompiled(
  cacheDir: string,
  key: Digest,
  data: Uint8Array,
): Promise<void> {
  const stored: StoredOutput = {
    format: FORMAT,
    key,
    code: Buffer.from(data).toString("utf8"),
  };
  await writeFileAtomic(pathOf(cacheDir, key), JSON.stringify(stored), {
    fsync: false,
  });
}

function pathOf(cacheDir: string, key: Digest): string {
  return join(cacheDir, "compiled", `${key.slice("sha256:".length)}.json`);
}
