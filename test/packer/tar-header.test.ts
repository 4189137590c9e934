// The packer's tar header encoder writes the very bytes node-tar's Header and Pax write, for the
// common case it encodes itself and for every case it hands to node-tar.

import { describe, expect, it } from "vitest";
import {
  encodeByNodeTar,
  headerEncoder,
  type HeaderFields,
} from "../../packer/tar-header.mjs";

const MTIME = new Date(1_000_000_000_000);

/** A deterministic ASCII path of `length` characters, with slashes, for the `seed`-th case. */
function pathOf(length: number, seed: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-+@~ /";
  let path = "";
  for (let i = 0; i < length; i++)
    path += alphabet[(i * 7 + seed * 13 + ((i * seed) % 5)) % alphabet.length];
  return path;
}

const SIZES = [
  0,
  1,
  7,
  8,
  511,
  512,
  4096,
  1 << 20,
  8 ** 10 - 1,
  8 ** 10,
  2 ** 33 + 5,
];
const NAMES = [
  "a",
  "lib/python3.11/site-packages/numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so",
  "bin/python3.11",
  "conda-meta/python-3.11.7-hfx0000_0_cpython.json",
  "n".repeat(99),
  "n".repeat(100),
  `${"d".repeat(60)}/${"f".repeat(90)}`,
  `deep/${"n".repeat(120)}.txt`,
  "lib/пакет/файл.py",
  "caf\u00e9.txt",
  "tab\tand\u007fdel",
  ...Array.from({ length: 40 }, (_, i) => pathOf(1 + ((i * 37) % 140), i)),
];
const LINKS = [
  "a.js",
  "../lib/libpython3.11.so.1.0",
  "l".repeat(100),
  "l".repeat(101),
  "../\u00fcber",
];

function cases(): HeaderFields[] {
  const all: HeaderFields[] = [];
  for (const [i, path] of NAMES.entries()) {
    for (const size of SIZES)
      for (const mode of [0o644, 0o755])
        all.push({ path, type: "File", mode, size });
    all.push({ path: `${path}/`, type: "Directory", mode: 0o755, size: 0 });
    all.push({
      path,
      type: "SymbolicLink",
      mode: 0o777,
      size: 0,
      linkpath: LINKS[i % LINKS.length],
    });
  }
  for (const linkpath of LINKS)
    all.push({
      path: "bin/python",
      type: "SymbolicLink",
      mode: 0o777,
      size: 0,
      linkpath,
    });
  return all;
}

describe("headerEncoder", () => {
  it("gives node-tar's bytes for every name, size, type, mode and link name, pax records included", () => {
    const encode = headerEncoder(MTIME);
    const all = cases();
    let paxed = 0;
    const differing: HeaderFields[] = [];
    for (const fields of all) {
      const expected = encodeByNodeTar(fields, MTIME);
      if (expected.length > 512) paxed++;
      if (!encode(fields).equals(expected)) differing.push(fields);
    }
    expect(differing).toEqual([]);
    // The table reaches both paths: long and non-ASCII names need pax records.
    expect(paxed).toBeGreaterThan(20);
    expect(all.length - paxed).toBeGreaterThan(400);
  });

  it("keeps each archive's mtime in its own encoder", () => {
    const fields: HeaderFields = {
      path: "a",
      type: "File",
      mode: 0o644,
      size: 3,
    };
    const other = new Date(0);
    const first = Buffer.from(headerEncoder(MTIME)(fields));
    const second = Buffer.from(headerEncoder(other)(fields));
    expect(first).toEqual(encodeByNodeTar(fields, MTIME));
    expect(second).toEqual(encodeByNodeTar(fields, other));
    expect(first).not.toEqual(second);
  });
});
