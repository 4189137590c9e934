// Which byte code a Conda bundle ships: up-to-date timestamp .pyc files become hash-based ones
// (the pack worker rewrites their header), stale ones are left out.

import { closeSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { CondaBundleEntry } from "./prefix-entries.js";
import { pySourceOf } from "./prefix-walk.js";
import { PYC_HEADER_SIZE, readPycHeader } from "./hash-based-pyc.mjs";

/**
 * Decides every `__pycache__` byte-code entry of `out` whose source is also a file entry of it.
 *
 * Why: both unpackers give files the unpack time as mtime, so a timestamp .pyc (its header holds
 * the source's mtime and size) never matches its unpacked source and Python recompiles it at every
 * start, unable to cache the result in a read-only layer.
 * - A timestamp .pyc of a known magic whose header matches its source's mtime and size (the check
 *   importlib makes, so the byte code is that source's) and whose source is packed exactly as the
 *   prefix holds it gets `hashPyc`: the pack worker writes it as an unchecked hash-based .pyc
 *   (PEP 552), valid wherever and whenever it is unpacked. Such a source is never rewritten on
 *   unpack (relocation only touches placeholder files, which are packed from other bytes).
 * - A timestamp .pyc that does not match, or whose source is packed with placeholders (relocation
 *   rewrites it after unpacking), can never be used after unpacking: it is left out.
 * - Hash-based byte code, byte code of an unknown magic and byte code whose source is not packed
 *   are packed as they are.
 * Paths in `settled` (entries already handed on, as the runtime layer is) are kept as they are.
 */
export function settleByteCode(
  out: Map<string, CondaBundleEntry>,
  prefix: string,
  settled?: ReadonlySet<string>,
): void {
  const header = Buffer.alloc(PYC_HEADER_SIZE);
  for (const [path, entry] of out) {
    if (entry.type !== "file" || settled?.has(path)) continue;
    const py = pySourceOf(path);
    if (py === undefined || entry.source !== join(prefix, path)) continue;
    const source = out.get(py);
    if (source?.type !== "file") continue;
    const found = readPycHeader(
      header.subarray(0, readHead(entry.source, header)),
    );
    if (found === undefined || found.hashBased) continue;
    const pySource = join(prefix, py);
    if (source.source === pySource && matches(found, pySource))
      entry.hashPyc = { source: pySource, mtime: found.mtime };
    else out.delete(path);
  }
}

/** Reads up to a header's bytes of `file` into `into`; the count read. */
function readHead(file: string, into: Buffer): number {
  const fd = openSync(file, "r");
  try {
    return readSync(fd, into, 0, into.length, 0);
  } finally {
    closeSync(fd);
  }
}

/**
 * importlib's `_validate_timestamp_pyc`: the header's mtime is `int(st_mtime)` (a double made
 * from seconds and nanoseconds, as os.stat makes it) and its size `st_size`, both modulo 2**32.
 */
function matches(
  header: { mtime: number; size: number },
  source: string,
): boolean {
  const st = statSync(source, { bigint: true });
  const seconds = Math.trunc(
    Number(st.mtimeNs / 1_000_000_000n) +
      Number(st.mtimeNs % 1_000_000_000n) * 1e-9,
  );
  return (
    header.mtime === ((seconds % 2 ** 32) + 2 ** 32) % 2 ** 32 &&
    header.size === Number(st.size % 2n ** 32n)
  );
}
