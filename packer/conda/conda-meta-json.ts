// A conda-meta record as a Conda bundle holds it: as conda-pack writes it.

import { compare } from "../../src/core/index.js";

/** A conda-meta record as conda-pack packs it: local paths emptied, keys sorted, one-space indent. */
export function rewriteCondaMeta(json: Record<string, unknown>): string {
  // Shallow copies of the two objects that change: the caller's record stays as it is.
  const copy: Record<string, unknown> = { ...json };
  for (const field of ["extracted_package_dir", "package_tarball_full_path"])
    if (field in copy) copy[field] = "";
  const link = copy["link"];
  if (link !== null && typeof link === "object" && "source" in link)
    copy["link"] = { ...link, source: "" };
  return sortedJson(copy, 1);
}

/**
 * `JSON.stringify(value, null, indent)` with every object's keys in sorted order, as a sorted
 * copy would give, without making the copy. Integer-like keys come first, ascending, as an
 * object built in sorted order enumerates them. conda writes its records with sorted keys, so
 * most are stringified as they are; otherwise a replacer array (every key of the value) orders
 * the keys of each object as it lists them. Records hold thousands of objects, so this matters.
 */
function sortedJson(value: unknown, indent: number): string {
  return JSON.stringify(
    value,
    hasSortedKeys(value) ? null : sortedKeysOf(value),
    indent,
  );
}

/**
 * Whether every object in `node` lists its keys in sorted order already: the integer-like ones
 * (which JavaScript always enumerates first, ascending), then the rest by code unit. No
 * `__proto__` key: a replacer array would read the prototype for the objects lacking one.
 */
function hasSortedKeys(node: unknown): boolean {
  if (node === null || typeof node !== "object") return true;
  // Only objects and arrays are visited: a record's tens of thousands of strings and numbers
  // (its `files`, each path's fields) cost no call each, which the cold planner pays for in full.
  if (Array.isArray(node)) {
    for (const item of node)
      if (item !== null && typeof item === "object" && !hasSortedKeys(item))
        return false;
    return true;
  }
  // Keys, not entries: a record's thousands of small objects then cost no pair arrays.
  const object = node as Record<string, unknown>;
  let last: string | undefined;
  for (const key of Object.keys(object)) {
    if (key === "__proto__") return false;
    if (!isIndex(key)) {
      if (last !== undefined && !(last < key)) return false;
      last = key;
    }
    const value = object[key];
    if (value !== null && typeof value === "object" && !hasSortedKeys(value))
      return false;
  }
  return true;
}

/** Every key of every object in `value`: the integer-like ones ascending, then the rest sorted. */
function sortedKeysOf(value: unknown): string[] {
  const keys = new Set<string>();
  const collect = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node)
        if (item !== null && typeof item === "object") collect(item);
    } else if (node !== null && typeof node === "object") {
      for (const [key, child] of Object.entries(node)) {
        keys.add(key);
        if (child !== null && typeof child === "object") collect(child);
      }
    }
  };
  collect(value);
  const indices = [...keys]
    .filter(isIndex)
    .sort((a, b) => Number(a) - Number(b));
  const names = [...keys].filter((k) => !isIndex(k)).sort(compare);
  return [...indices, ...names];
}

function isIndex(key: string): boolean {
  // Most keys start with a letter or `_`: no regular expression for those.
  const first = key.charCodeAt(0);
  return (
    first >= 0x30 &&
    first <= 0x39 &&
    /^(?:0|[1-9]\d*)$/.test(key) &&
    Number(key) < 2 ** 32 - 1
  );
}
