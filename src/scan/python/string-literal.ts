// The value of a Python string literal in a tree-sitter tree, when it is a plain one.

import type { Node } from "web-tree-sitter";

/** The value of a plain string literal (no f-string interpolation, no implicit concatenation), or undefined. */
export function stringLiteral(node: Node): string | undefined {
  if (node.type !== "string") return undefined;
  let value = "";
  for (const child of node.namedChildren) {
    if (!child) continue;
    if (child.type === "interpolation") return undefined;
    if (child.type === "string_start") {
      if (/[fF]/.test(child.text)) return undefined;
    } else if (child.type === "string_content") {
      value += child.text;
    } else if (child.type !== "string_end") {
      return undefined;
    }
  }
  return value;
}
