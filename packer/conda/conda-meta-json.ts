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
 * copy would give, without making the copy: a replacer array (every key of the value) orders
 * the keys of each object as it lists them. Integer-like keys first, ascending, as an object
 * built in sorted order enumerates them; records hold thousands of objects, so this matters.
 */
function sortedJson(value: unknown, indent: number): string {
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
  const isIndex = (key: string) =>
    /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 2 ** 32 - 1;
  const indices = [...keys]
    .filter(isIndex)
    .sort((a, b) => Number(a) - Number(b));
  const names = [...keys].filter((k) => !isIndex(k)).sort(compare);
  return JSON.stringify(value, [...indices, ...names], indent);
}
