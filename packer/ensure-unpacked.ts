// Unpacks a bundle once per machine into an environments directory, relocating Conda
// environments, with a completion marker so that a crash half-way is redone, never used.

import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  pathExists,
  settleAll,
  writeFailure,
  isNotFound,
  namesIfPresent,
  type Digest,
  type OnEvent,
} from "../src/core/light.js";
import { readLockHolder, withDirLock } from "./dir-lock.js";
import { unpackBundle } from "./unpack-bundle.js";
import { openWriterThread } from "./unpack-thread.js";
import { assembleTree } from "./layers/assemble-tree.js";
import type { BundleIndex } from "./layers/bundle-index.js";
import { ensureLayer } from "./layers/ensure-layer.js";
import {
  LAYERS_DIR,
  layerBeside,
  readLayeredIndex,
} from "./layers/read-layered.js";
import {
  RELOCATION,
  ensureRelocatedBase,
  needsRelocation,
  relocate,
} from "./layers/relocated-base.js";
import { removeTree } from "./layers/read-only-tree.js";
import {
  COMPLETE_MARKER,
  unpackedDir,
  type EnsureUnpackedOptions,
} from "./env-dir.js";

export { COMPLETE_MARKER, type EnsureUnpackedOptions };

/**
 * Returns the directory the bundle is unpacked in, unpacking it first when needed. Concurrent
 * callers (in this and other processes, including runtime/envpack-run) unpack exactly once; a
 * waiting caller emits one `ENVPACK_WARN_UNPACK_LOCK_WAIT` warning naming the holder's pid.
 * Temp directories left by an unpack that was killed are removed before unpacking again.
 * @throws IntegrityError from unpacking; InputError ENVPACK_INPUT_NO_SPACE or
 *   ENVPACK_INPUT_OUTPUT_UNWRITABLE when the environments directory is full or not writable,
 *   ENVPACK_INPUT_CACHE_LOCKED when another
 *   process holds the lock past `lockTimeoutMs`; ToolError ENVPACK_TOOL_FAILED when relocation fails
 */
export async function ensureUnpacked(
  options: EnsureUnpackedOptions,
): Promise<{ dir: string; unpacked: boolean }> {
  try {
    return await unpackOnce(options);
  } catch (error) {
    throw writeFailure(error, options.envsDir, "environments directory");
  }
}

async function unpackOnce(
  options: EnsureUnpackedOptions,
): Promise<{ dir: string; unpacked: boolean }> {
  const hex = options.digest.slice("sha256:".length);
  const dir = unpackedDir(options.envsDir, options.digest);
  if (await pathExists(join(dir, COMPLETE_MARKER)))
    return { dir, unpacked: false };
  await mkdir(options.envsDir, { recursive: true });
  const lock = `${dir}.lock`;
  return withDirLock(
    lock,
    async () => {
      if (await pathExists(join(dir, COMPLETE_MARKER)))
        return { dir, unpacked: false };
      // Holding the lock, no other unpack of this bundle is running: its temps are leftovers.
      await removeTemps(options.envsDir, hex);
      await rm(dir, { recursive: true, force: true });
      const index = await readLayeredIndex(options.file, options.digest);
      if (index === undefined) {
        await unpackBundle({
          file: options.file,
          dest: dir,
          expectedDigest: options.digest,
          onEvent: options.onEvent,
          signal: options.signal,
        });
        if (await pathExists(join(dir, RELOCATION))) {
          try {
            await relocate(dir, options.signal);
          } catch (error) {
            await rm(dir, { recursive: true, force: true });
            throw error;
          }
        }
      } else await assembleLayers(options, index, dir);
      await mkdir(join(dir, dirname(COMPLETE_MARKER)), { recursive: true });
      await writeFile(join(dir, COMPLETE_MARKER), "");
      return { dir, unpacked: true };
    },
    {
      signal: options.signal,
      timeoutMs: options.lockTimeoutMs,
      onWait: (holder) =>
        options.onEvent?.({
          type: "warn",
          code: "ENVPACK_WARN_UNPACK_LOCK_WAIT",
          message: `waiting for ${lock}, held by ${holder === undefined ? "a process that wrote no pid yet" : `pid ${holder.pid}`}`,
          data: { lock, pid: holder?.pid },
        }),
    },
  );
}

/**
 * A layered bundle (format 3): each layer unpacked once per machine under `<envsDir>/layers/`
 * (found beside the index, named by its hex digest, with or without `.tar.zst`), then the tree
 * assembled from them in a temp directory renamed to `dir`. A Conda prefix's lower layers are
 * relocated once as a base shared by every bundle listing them (relocated-base.ts), which the
 * tree links to: a bundle that differs only in its app layer needs no relocation.
 */
async function assembleLayers(
  options: EnsureUnpackedOptions,
  index: BundleIndex,
  dir: string,
): Promise<void> {
  // Layers are unpacked side by side (one decompresses while another's files are written, all
  // on one writing thread); a digest listed twice is unpacked once. The first failure in index
  // order is the one thrown.
  const inFlight = new Map<Digest, Promise<string>>();
  const thread = openWriterThread();
  const unpacking = index.layers.map((layer) => {
    let dir = inFlight.get(layer.digest);
    if (dir === undefined) {
      dir = layerBeside(options.file, layer.digest).then(async (file) => {
        const unpacked = await ensureLayer({
          file,
          digest: layer.digest,
          layersDir: join(options.envsDir, LAYERS_DIR),
          onEvent: options.onEvent,
          signal: options.signal,
          lockTimeoutMs: options.lockTimeoutMs,
          thread,
        });
        return unpacked.dir;
      });
      inFlight.set(layer.digest, dir);
    }
    return dir;
  });
  try {
    await settleAll(unpacking);
  } finally {
    await thread.close();
  }
  const layerDirs = await Promise.all(unpacking);
  const lower = index.layers.flatMap((l, i) => (l.role === "app" ? [] : [i]));
  const lowerDirs = lower.map((i) => layerDirs[i] as string);
  const base = (await needsRelocation(lowerDirs))
    ? {
        dir: await ensureRelocatedBase({
          layers: lower.map(
            (i) => index.layers[i] as BundleIndex["layers"][number],
          ),
          layerDirs: lowerDirs,
          envsDir: options.envsDir,
          bundleName: basename(options.file),
          onEvent: options.onEvent,
          signal: options.signal,
          lockTimeoutMs: options.lockTimeoutMs,
        }),
        layers: new Set(lower),
      }
    : undefined;
  const temp = join(
    options.envsDir,
    `.${basename(dir)}.${randomBytes(6).toString("hex")}.tmp`,
  );
  try {
    await mkdir(temp);
    await assembleTree(layerDirs, temp, basename(options.file), {
      linkable: new Set(lower),
      base,
    });
    await rename(temp, dir);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** Temp directories of unpacks (ours: `.<hex>.<random>.tmp`; envpack-run's: `.<hex>.<pid>.tmp`). */
const TEMP_NAME = /^\.([0-9a-f]{64})\.[^/]+\.tmp$/;

async function removeTemps(envsDir: string, hex: string): Promise<void> {
  for (const name of await readdir(envsDir)) {
    if (TEMP_NAME.exec(name)?.[1] === hex)
      await removeTree(join(envsDir, name));
  }
}

/** Lock directories of unpacks (see dir-lock.ts), by bundle hex. */
const LOCK_NAME = /^([0-9a-f]{64})\.lock$/;

/**
 * Removes what killed unpacks left in `envsDir` (or its `layers/` or `bases/`): locks whose
 * holder is gone, and temp directories whose bundle's lock is not held by a live process (a live unpack's temp is kept,
 * and so is the temp of a lock that has no pid yet). Returns the names removed.
 */
export async function removeStaleUnpacks(envsDir: string): Promise<string[]> {
  const names = await namesIfPresent(envsDir);
  const removed: string[] = [];
  const held = new Set<string>();
  for (const name of names) {
    const hex = LOCK_NAME.exec(name)?.[1];
    if (hex === undefined) continue;
    const holder = await readLockHolder(join(envsDir, name));
    if (holder === undefined || holder.isAlive) {
      held.add(hex);
      continue;
    }
    await rm(join(envsDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  for (const name of names) {
    const hex = TEMP_NAME.exec(name)?.[1];
    if (hex === undefined || held.has(hex)) continue;
    await removeTree(join(envsDir, name));
    removed.push(name);
  }
  return removed;
}
