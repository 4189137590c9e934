// Byte-level prefix handling at pack time: putting placeholders back into prefix files, UTF-8 and shebang checks.

/** True when the bytes decode as UTF-8 (conda-pack's test for treating an unmanaged file as text). */
export function isUtf8(data: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(data);
    return true;
  } catch (error) {
    if (error instanceof TypeError) return false;
    throw error;
  }
}

/** Every occurrence of `from` replaced by `to` (byte strings, no length constraint). */
export function replaceAll(data: Buffer, from: Buffer, to: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  for (
    let at = data.indexOf(from, pos);
    at >= 0;
    at = data.indexOf(from, pos)
  ) {
    parts.push(data.subarray(pos, at), to);
    pos = at + from.length;
  }
  if (pos === 0) return data;
  parts.push(data.subarray(pos));
  return Buffer.concat(parts);
}

/**
 * Undoes conda's binary prefix substitution: each NUL-terminated run starting with `prefix` was
 * `placeholder…` padded with NULs after its terminator to keep the length; put the placeholder
 * back and consume that padding. Undefined when a run lacks its padding (not conda's layout).
 */
export function restoreBinaryPlaceholder(
  data: Buffer,
  prefix: Buffer,
  placeholder: Buffer,
): Buffer | undefined {
  const out: Buffer[] = [];
  let pos = 0;
  for (
    let at = data.indexOf(prefix, pos);
    at >= 0;
    at = data.indexOf(prefix, pos)
  ) {
    const nul = data.indexOf(0, at);
    if (nul < 0) return undefined;
    const run = data.subarray(at, nul + 1);
    const count = countOf(run, prefix);
    const growth = (placeholder.length - prefix.length) * count;
    const end = nul + 1 + growth;
    if (growth < 0 || end > data.length) return undefined;
    for (let i = nul + 1; i < end; i++) if (data[i] !== 0) return undefined;
    out.push(data.subarray(pos, at), replaceAll(run, prefix, placeholder));
    pos = end;
  }
  out.push(data.subarray(pos));
  const restored = Buffer.concat(out);
  return restored.length === data.length ? restored : undefined;
}

/** True when the data starts with `#!` and its first line contains `needle`. */
export function isShebangWith(data: Buffer, needle: Buffer): boolean {
  if (data[0] !== 0x23 || data[1] !== 0x21) return false;
  const newline = data.indexOf(0x0a);
  const line = newline < 0 ? data : data.subarray(0, newline);
  return line.includes(needle);
}

function countOf(data: Buffer, needle: Buffer): number {
  let count = 0;
  for (
    let at = data.indexOf(needle);
    at >= 0;
    at = data.indexOf(needle, at + needle.length)
  )
    count++;
  return count;
}
