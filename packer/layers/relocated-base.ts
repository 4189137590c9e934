// A Conda prefix's lower layers (all but the app's) assembled and relocated once per machine under
// `<envs>/bases/<key>`, shared read-only by every bundle that lists the same lower layers: an
// app-only change needs no relocation. A crash half-way leaves a temp or an unmarked base, redone.

import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, rename, writeFile } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import {
  IntegrityError,
  ToolError,
  isNotFound,
  namesIfPresent,
  pathExists,
  type OnEvent,
} from "../../src/core/light.js";
import { withDirLock } from "../dir-lock.js";
import { assembleTree } from "./assemble-tree.js";
import type { LayerRef } from "./bundle-index.js";
import { makeReadOnly, removeTree } from "./read-only-tree.js";

/** Where relocated bases live inside an environments directory. */
export const BASES_DIR = "bases";
/** A Conda prefix's relocation record, in the layer that holds it. */
export const RELOCATION = ".envpack/relocate.json";
/** Written last in a base, once it is assembled, relocated and read-only. */
const BASE_MARKER = ".envpack/complete";

/**
 * The name of the base of `layers` (the lower layers, in order): sha256 of one `<role> <hex>`
 * line per layer. runtime/envpack-run names it the same way, so either runner uses the other's.
 */
export function baseName(layers: readonly LayerRef[]): string {
  return createHash("sha256").update(baseLayersText(layers)).digest("hex");
}

const baseLayersText = (layers: readonly LayerRef[]): string =>
  layers.map((l) => `${l.role} ${l.digest.slice("sha256:".length)}\n`).join("");

/** In a base: the `<role> <hex>` lines it was named after (which layers it links to). */
const BASE_LAYERS = ".envpack/base-layers";

/** Whether any of these unpacked layers holds a relocation record (a Conda prefix's). */
export async function needsRelocation(
  layerDirs: readonly string[],
): Promise<boolean> {
  for (const dir of layerDirs)
    if (await pathExists(join(dir, RELOCATION))) return true;
  return false;
}

/** Options of {@link ensureRelocatedBase}. */
export interface EnsureBaseOptions {
  /** The lower layers and their unpacked directories, in assembly order. */
  layers: readonly LayerRef[];
  layerDirs: readonly string[];
  envsDir: string;
  /** Names the bundle in errors. */
  bundleName: string;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
  lockTimeoutMs?: number | undefined;
}

/** Temps of base assemblies: `.<hex>.<random>.tmp`. */
const TEMP_NAME = /^\.([0-9a-f]{64})\.[^/]+\.tmp$/;

/**
 * The directory of the relocated base of these layers, made first when needed: assembled from
 * the layers (assembleTree: one link per directory a single layer holds, real directories where
 * relocation replaces files), relocated to its own path by the prefix's interpreter, then made
 * read-only and marked complete. A base found without its marker is removed and made again.
 * @throws as assembleTree; ToolError ENVPACK_TOOL_FAILED when relocation fails (nothing left);
 *   InputError ENVPACK_INPUT_CACHE_LOCKED after `lockTimeoutMs`
 */
export async function ensureRelocatedBase(
  options: EnsureBaseOptions,
): Promise<string> {
  const basesDir = join(options.envsDir, BASES_DIR);
  const hex = baseName(options.layers);
  const dir = join(basesDir, hex);
  if (await pathExists(join(dir, BASE_MARKER))) return dir;
  await mkdir(basesDir, { recursive: true });
  return withDirLock(
    `${dir}.lock`,
    async () => {
      if (await pathExists(join(dir, BASE_MARKER))) return dir;
      // Holding the lock, no other assembly of this base runs: temps and a base without its
      // marker are leftovers of one that was killed.
      for (const name of await readdir(basesDir))
        if (TEMP_NAME.exec(name)?.[1] === hex)
          await removeTree(join(basesDir, name));
      await removeTree(dir);
      const temp = join(
        basesDir,
        `.${hex}.${randomBytes(6).toString("hex")}.tmp`,
      );
      try {
        await mkdir(temp);
        await assembleTree(options.layerDirs, temp, options.bundleName, {
          realDirs: await relocatedDirs(options.layerDirs),
          linkable: new Set(options.layerDirs.map((_, i) => i)),
        });
        await rename(temp, dir);
      } finally {
        await removeTree(temp);
      }
      try {
        await relocate(dir, options.signal);
        await makeReadOnly(dir, { except: ".envpack" });
        await writeFile(join(dir, BASE_LAYERS), baseLayersText(options.layers));
        await writeFile(join(dir, BASE_MARKER), "");
        await makeReadOnly(join(dir, ".envpack"));
      } catch (error) {
        await removeTree(dir);
        throw error;
      }
      return dir;
    },
    { signal: options.signal, timeoutMs: options.lockTimeoutMs },
  );
}

/**
 * The directories holding a Conda prefix's relocation targets and their ancestors (relocation
 * replaces those files in the base, never in a shared layer).
 */
async function relocatedDirs(
  layerDirs: readonly string[],
): Promise<Set<string>> {
  const dirs = new Set<string>();
  for (const layer of layerDirs) {
    let text: string;
    try {
      text = await readFile(join(layer, RELOCATION), "utf8");
    } catch (error) {
      if (isNotFound(error)) continue;
      throw error;
    }
    let record: { files?: unknown };
    try {
      record = JSON.parse(text) as { files?: unknown };
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new IntegrityError(
        "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE",
        `${basename(layer)}: ${RELOCATION} is not JSON`,
        {
          hint: "Do not use this bundle; build it again.",
          details: { layer },
        },
      );
    }
    const files = Array.isArray(record.files)
      ? (record.files as Array<{ path?: unknown } | null>)
      : [];
    for (const file of files) {
      if (typeof file?.path !== "string") continue;
      // Ancestors up to the root ("." for a relative path, "/" for an absolute one).
      for (
        let dir = posix.dirname(file.path);
        dir !== "." && dir !== "/";
        dir = posix.dirname(dir)
      )
        dirs.add(dir);
    }
  }
  return dirs;
}

/**
 * Rewrites a Conda prefix at `dir` for its path with its own interpreter, as conda-unpack does;
 * on failure `dir` is left to the caller.
 * @throws ToolError ENVPACK_TOOL_FAILED with the tail of its stderr
 */
export async function relocate(
  dir: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { execa } = await import("execa");
  const result = await execa(
    join(dir, "bin", "python3"),
    ["-I", "-B", join(dir, ".envpack", "relocate.py")],
    {
      reject: false,
      cancelSignal: signal,
      stdin: "ignore",
    },
  );
  if (result.exitCode !== 0) {
    const tail = String(result.stderr).split("\n").slice(-5).join("\n");
    throw new ToolError(
      "ENVPACK_TOOL_FAILED",
      `relocating the Conda environment to ${dir} failed: ${tail}`,
      {
        hint: "Use a shorter cache path (ENVPACK_CACHE_DIR): the new prefix must be no longer than the build's placeholder.",
        details: { dir, exitCode: result.exitCode },
      },
    );
  }
}

/**
 * Removes the bases (complete or not) that link to any of `layers` (hex digests), before those
 * layers' directories go: a base without them would be broken. Returns the names removed.
 */
export async function removeBasesOf(
  envsDir: string,
  layers: ReadonlySet<string>,
): Promise<string[]> {
  const basesDir = join(envsDir, BASES_DIR);
  const names = await namesIfPresent(basesDir);
  const removed: string[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    let text: string;
    try {
      text = await readFile(join(basesDir, name, BASE_LAYERS), "utf8");
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // Not complete: its own runner redoes it; removing it here could race that runner.
      continue;
    }
    const linked = text.split("\n").map((line) => line.split(" ")[1]);
    if (!linked.some((hex) => hex !== undefined && layers.has(hex))) continue;
    await removeTree(join(basesDir, name));
    removed.push(name);
  }
  return removed;
}
