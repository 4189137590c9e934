// Unpacks a bundle once per machine into an environments directory, relocating Conda
// environments, with a completion marker so that a crash half-way is redone, never used.

import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import {
  pathExists,
  ToolError,
  type Digest,
  type OnEvent,
} from "../src/core/index.js";
import { withDirLock } from "./dir-lock.js";
import { unpackBundle } from "./unpack-bundle.js";

/** Marker written last, after unpacking and relocation succeeded. */
export const COMPLETE_MARKER = ".envpack/complete";
const RELOCATION = ".envpack/relocate.json";

/** Options of {@link ensureUnpacked}. */
export interface EnsureUnpackedOptions {
  /** The bundle file. */
  file: string;
  /** Its digest: checked before anything is written, and the environment's name. */
  digest: Digest;
  /** Directory holding one environment per bundle digest. */
  envsDir: string;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Returns the directory the bundle is unpacked in, unpacking it first when needed. Concurrent
 * callers (in this and other processes, including runtime/envpack-run) unpack exactly once.
 * @throws IntegrityError from unpacking; ToolError ENVPACK_TOOL_FAILED when relocation fails
 */
export async function ensureUnpacked(
  options: EnsureUnpackedOptions,
): Promise<{ dir: string; unpacked: boolean }> {
  const hex = options.digest.slice("sha256:".length);
  const dir = join(options.envsDir, hex);
  if (await pathExists(join(dir, COMPLETE_MARKER)))
    return { dir, unpacked: false };
  await mkdir(options.envsDir, { recursive: true });
  return withDirLock(
    `${dir}.lock`,
    async () => {
      if (await pathExists(join(dir, COMPLETE_MARKER)))
        return { dir, unpacked: false };
      await rm(dir, { recursive: true, force: true });
      await unpackBundle({
        file: options.file,
        dest: dir,
        expectedDigest: options.digest,
        onEvent: options.onEvent,
        signal: options.signal,
      });
      if (await pathExists(join(dir, RELOCATION)))
        await relocate(dir, options.signal);
      await writeFile(join(dir, COMPLETE_MARKER), "");
      return { dir, unpacked: true };
    },
    options.signal,
  );
}

/** Conda environments rewrite their prefix with their own interpreter, as conda-unpack does. */
async function relocate(
  dir: string,
  signal: AbortSignal | undefined,
): Promise<void> {
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
    await rm(dir, { recursive: true, force: true });
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
