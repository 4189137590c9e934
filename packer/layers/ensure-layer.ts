// A layer unpacked once per machine under `<layers>/<hex>`, read-only (its directories too) so every
// bundle tree linked from it shares it unchanged; a crash half-way leaves only a temp, redone.

import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { pathExists, type Digest, type OnEvent } from "../../src/core/light.js";
import { withDirLock } from "../dir-lock.js";
import { unpackBundle } from "../unpack-bundle.js";
import type { WriterThread } from "../unpack-thread.js";
import { removeTree } from "./read-only-tree.js";

/** Options of {@link ensureLayer}. */
export interface EnsureLayerOptions {
  /** The layer's `.tar.zst`. */
  file: string;
  /** Its digest, checked before anything is written. */
  digest: Digest;
  /** The directory holding one unpacked layer per digest. */
  layersDir: string;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
  lockTimeoutMs?: number | undefined;
  /** The writing thread shared with the bundle's other layers (see unpackBundle). */
  thread?: WriterThread | undefined;
}

/** Temps of layer unpacks: `.<hex>.<random>.tmp` (unpackBundle's own temps share the prefix). */
const TEMP_NAME = /^\.+([0-9a-f]{64})\.[^/]+\.tmp$/;

/**
 * The directory a layer is unpacked in, unpacking it first when needed (under the safe-unpack
 * contract of unpackBundle, so a hostile layer is refused exactly as a hostile bundle). The
 * directory appears only complete and read-only (see read-only-tree.ts for its removal).
 * @returns the directory and whether this call unpacked it
 * @throws as unpackBundle; InputError ENVPACK_INPUT_CACHE_LOCKED after `lockTimeoutMs`
 */
export async function ensureLayer(
  options: EnsureLayerOptions,
): Promise<{ dir: string; unpacked: boolean }> {
  const hex = options.digest.slice("sha256:".length);
  const dir = join(options.layersDir, hex);
  if (await pathExists(dir)) return { dir, unpacked: false };
  await mkdir(options.layersDir, { recursive: true });
  return withDirLock(
    `${dir}.lock`,
    async () => {
      if (await pathExists(dir)) return { dir, unpacked: false };
      // Holding the lock, no other unpack of this layer runs: its temps are leftovers.
      for (const name of await readdir(options.layersDir))
        if (TEMP_NAME.exec(name)?.[1] === hex)
          await removeTree(join(options.layersDir, name));
      const stage = join(
        options.layersDir,
        `.${hex}.${randomBytes(6).toString("hex")}.tmp`,
      );
      try {
        await unpackBundle({
          file: options.file,
          dest: stage,
          expectedDigest: options.digest,
          onEvent: options.onEvent,
          signal: options.signal,
          readOnly: true,
          thread: options.thread,
        });
        await rename(stage, dir);
      } finally {
        await removeTree(stage);
      }
      return { dir, unpacked: true };
    },
    { signal: options.signal, timeoutMs: options.lockTimeoutMs },
  );
}
