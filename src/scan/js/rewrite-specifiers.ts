// Rewrites literal import specifiers of one source file, for bundles whose files are renamed.

import { findImports } from "./find-imports.js";

/**
 * Returns `text` with each literal specifier for which `replace` returns a string replaced by
 * it (as a JSON string literal). Computed specifiers, and files that do not parse, are left as
 * they are.
 */
export function rewriteSpecifiers(
  text: string,
  ext: string,
  replace: (specifier: string) => string | undefined,
): string {
  const { sites } = findImports(text, ext);
  const edits = sites
    .flatMap((site) => {
      if (site.target.type !== "literal" || site.range === undefined) return [];
      const next = replace(site.target.specifier);
      return next === undefined || next === site.target.specifier
        ? []
        : [{ range: site.range, next }];
    })
    .sort((a, b) => b.range[0] - a.range[0]);
  let out = text;
  for (const { range, next } of edits)
    out = out.slice(0, range[0]) + JSON.stringify(next) + out.slice(range[1]);
  return out;
}
