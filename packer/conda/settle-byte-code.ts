// Which byte code of a Conda bundle the packer settles against its source: marked here by path
// alone; the pack worker reads each header and decides (hash-based-pyc.mjs `settlePyc`).

import type { CondaBundleEntry } from "./prefix-entries.js";
import { pySourceOf } from "./prefix-walk.js";

/**
 * Marks every `__pycache__` byte-code entry of `out` whose source is also a file entry of it,
 * with no I/O: the pack worker has the file open anyway and decides there.
 *
 * Why: both unpackers give files the unpack time as mtime, so a timestamp .pyc (its header holds
 * the source's mtime and size) never matches its unpacked source and Python recompiles it at every
 * start, unable to cache the result in a read-only layer.
 * - Byte code packed from the prefix whose source is packed exactly as the prefix holds it gets
 *   `pyc: { source }`: a timestamp .pyc of a known magic whose header matches that source's mtime
 *   and size (the check importlib makes, so the byte code is that source's) is packed as an
 *   unchecked hash-based .pyc (PEP 552), valid wherever and whenever it is unpacked; one that
 *   does not match is left out. Such a source is never rewritten on unpack (relocation only
 *   touches placeholder files, which are packed from other bytes).
 * - Byte code whose source is packed with placeholders (relocation rewrites it after unpacking)
 *   gets `rewritten: true`: a timestamp .pyc of a known magic can never be used after unpacking
 *   and is left out.
 * - Hash-based byte code, byte code of an unknown magic and byte code whose source is not packed
 *   are packed as they are.
 * Paths in `settled` (entries already handed on, as the runtime layer is) are kept as they are.
 */
export function settleByteCode(
  out: Map<string, CondaBundleEntry>,
  prefix: string,
  settled?: ReadonlySet<string>,
): void {
  // Paths under the resolved prefix as prefix-entries.ts joins them, without path.join's
  // normalising: the walk's paths are normal already.
  const base = prefix.endsWith("/") ? prefix : `${prefix}/`;
  for (const [path, entry] of out) {
    if (!path.endsWith(".pyc") || entry.type !== "file" || settled?.has(path))
      continue;
    const py = pySourceOf(path);
    if (py === undefined || entry.source !== base + path) continue;
    const source = out.get(py);
    if (source?.type !== "file") continue;
    const pySource = base + py;
    entry.pyc =
      source.source === pySource
        ? { source: pySource }
        : { source: pySource, rewritten: true };
  }
}
