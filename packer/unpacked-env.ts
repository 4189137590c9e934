// The ready path of ensureUnpacked for start-up paths (`envpack run`): a bundle whose tree is
// complete is found by its marker alone, without loading the unpacker (tar, zstd, the layers).

import { join } from "node:path";
import { pathExists } from "../src/core/light.js";
import {
  COMPLETE_MARKER,
  unpackedDir,
  type EnsureUnpackedOptions,
} from "./env-dir.js";

/**
 * ensureUnpacked, with the unpacker loaded only when the tree is not complete yet: the same
 * result, contract and errors.
 */
export async function openUnpacked(
  options: EnsureUnpackedOptions,
): Promise<{ dir: string; unpacked: boolean }> {
  const dir = unpackedDir(options.envsDir, options.digest);
  if (await pathExists(join(dir, COMPLETE_MARKER)))
    return { dir, unpacked: false };
  const { ensureUnpacked } = await import("./ensure-unpacked.js");
  return ensureUnpacked(options);
}
