// One entry of a bundle as the writer takes it: what the packer and its hosts share.

import type { LayerRole } from "./layers/bundle-index.js";

/** One thing to put in a bundle. */
export interface BundleEntry {
  /** POSIX path relative to the bundle root. */
  path: string;
  type: "file" | "directory" | "symlink";
  /** Files: the absolute file to read the bytes from. */
  source?: string | undefined;
  /** Files: the bytes, when they come from memory (launchers, metadata). */
  data?: Uint8Array | undefined;
  /** Files: written 0755 instead of 0644; left undefined, the source file's execute bit decides. */
  executable?: boolean | undefined;
  /**
   * Files: `source` is Python byte code of the source file `pyc.source`, settled as it is packed
   * (packer/conda/hash-based-pyc.mjs `settlePyc`): a timestamp .pyc up to date with that source
   * is packed as an unchecked hash-based .pyc, another timestamp .pyc (stale, or its source
   * `rewritten` after unpacking) is left out, any other byte code is packed as it is.
   */
  pyc?: { source: string; rewritten?: boolean | undefined } | undefined;
  /** Symlinks: the link's target, as stored. */
  linkTarget?: string | undefined;
  /**
   * The layer of a layered bundle (format 3) the entry belongs to; untagged entries are the
   * app's. A single-blob bundle ignores it.
   */
  layer?: LayerRole | undefined;
}
