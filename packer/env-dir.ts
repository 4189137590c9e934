// Where a bundle's environment lives and how its completeness shows: shared by ensureUnpacked and
// its light ready path (unpacked-env.ts).

import { join } from "node:path";
import type { Digest, OnEvent } from "../src/core/light.js";

/** Options of ensureUnpacked (and {@link openUnpacked}). */
export interface EnsureUnpackedOptions {
  /** The bundle file. */
  file: string;
  /** Its digest: checked before anything is written, and the environment's name. */
  digest: Digest;
  /** Directory holding one environment per bundle digest. */
  envsDir: string;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
  /** How long to wait for another process's unpack of the same bundle; default 10 minutes. */
  lockTimeoutMs?: number | undefined;
}

/** Marker written last, after unpacking and relocation succeeded. */
export const COMPLETE_MARKER = ".envpack/complete";

/** The directory a bundle unpacks into under `envsDir`: named by its hex digest. */
export function unpackedDir(envsDir: string, digest: string): string {
  return join(envsDir, digest.slice("sha256:".length));
}
