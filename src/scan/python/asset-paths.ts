// Paths a Python module builds from its own location (`os.path.join(os.path.dirname(__file__),
// "templates")`, `Path(__file__).parent / "data"`), evaluated statically where the parts are literals.

import type { Node } from "web-tree-sitter";
import { stringLiteral } from "./string-literal.js";

/** A path relative to the module's directory (`..` for each parent), and where it is built. */
export interface AssetPathSite {
  parts: string[];
  line: number;
}

/** What an expression evaluates to: the module file itself, or a directory-relative path. */
type Value = { type: "file" } | { type: "path"; parts: string[] };

const OS_PATH_SAME = new Set(["abspath", "realpath", "normpath"]);
const PATH_SAME_METHODS = new Set(["resolve", "absolute"]);
const PATH_CLASSES = new Set(["Path", "PurePath", "PosixPath"]);

/**
 * The paths built from `__file__` in a module (tree root): `os.path.dirname`, `abspath`,
 * `realpath`, `normpath`, `os.path.join`, `pathlib.Path(...)`, `.parent`, `.parents[n]`,
 * `.resolve()`, `.absolute()`, `/` and `.joinpath` with string literals, and module-level names
 * bound to such a path (`HERE = Path(__file__).resolve().parent`). Only the outermost expression
 * of a nest counts, and only paths with a literal name in them (not the module's own directory or
 * its parents).
 */
export function findAssetPaths(root: Node): AssetPathSite[] {
  const names = new Map<string, Value>();
  const sites: AssetPathSite[] = [];
  const visit = (node: Node): void => {
    const value = evaluate(node, names);
    if (value?.type === "path") {
      if (value.parts.some((p) => p !== ".."))
        sites.push({ parts: value.parts, line: node.startPosition.row + 1 });
      return;
    }
    if (value !== undefined) return;
    for (const child of node.namedChildren) if (child) visit(child);
  };
  for (const statement of root.namedChildren) {
    if (!statement) continue;
    visit(statement);
    // A module-level binding is known to every later statement (and function body).
    const assignment = statement.firstNamedChild;
    if (
      statement.type === "expression_statement" &&
      assignment?.type === "assignment"
    ) {
      const left = assignment.childForFieldName("left");
      const right = assignment.childForFieldName("right");
      const value = right ? evaluate(right, names) : undefined;
      if (left?.type === "identifier") {
        if (value !== undefined) names.set(left.text, value);
        else names.delete(left.text);
      }
    }
  }
  return sites;
}

function evaluate(
  node: Node,
  names: ReadonlyMap<string, Value>,
): Value | undefined {
  switch (node.type) {
    case "identifier":
      return node.text === "__file__" ? { type: "file" } : names.get(node.text);
    case "parenthesized_expression": {
      const inner = node.namedChildren[0];
      return inner ? evaluate(inner, names) : undefined;
    }
    case "attribute": {
      if (node.childForFieldName("attribute")?.text !== "parent")
        return undefined;
      const object = node.childForFieldName("object");
      return object ? parent(evaluate(object, names)) : undefined;
    }
    case "subscript": {
      // `.parents[n]`: the (n+1)th parent.
      const value = node.childForFieldName("value");
      const index = node.childForFieldName("subscript");
      if (
        value?.type !== "attribute" ||
        value.childForFieldName("attribute")?.text !== "parents" ||
        index?.type !== "integer"
      )
        return undefined;
      const object = value.childForFieldName("object");
      let result = object ? evaluate(object, names) : undefined;
      for (let i = 0; i <= Number(index.text); i++) result = parent(result);
      return result;
    }
    case "binary_operator": {
      if (node.childForFieldName("operator")?.text !== "/") return undefined;
      const left = node.childForFieldName("left");
      const right = node.childForFieldName("right");
      const base = left ? evaluate(left, names) : undefined;
      const part = right ? stringLiteral(right) : undefined;
      return join(base, part === undefined ? undefined : [part]);
    }
    case "call":
      return evaluateCall(node, names);
    default:
      return undefined;
  }
}

function evaluateCall(
  call: Node,
  names: ReadonlyMap<string, Value>,
): Value | undefined {
  const fn = call.childForFieldName("function");
  const args = (
    call.childForFieldName("arguments")?.namedChildren ?? []
  ).filter((a): a is Node => a !== null && a.type !== "comment");
  if (!fn || args.some((a) => a.type === "keyword_argument")) return undefined;
  const name =
    fn.type === "attribute" ? fn.childForFieldName("attribute")?.text : fn.text;
  const object =
    fn.type === "attribute" ? fn.childForFieldName("object") : null;
  const first = args[0];
  const isOsPath = object?.text === "os.path" || object?.text === "path";
  if (fn.type === "identifier" || isOsPath) {
    if (name === "dirname" && args.length === 1 && first)
      return parent(evaluate(first, names));
    if (
      name !== undefined &&
      OS_PATH_SAME.has(name) &&
      args.length === 1 &&
      first
    )
      return evaluate(first, names);
    if (name === "join" && first) {
      const parts = args.slice(1).map(stringLiteral);
      return join(
        evaluate(first, names),
        parts.every((p) => p !== undefined) ? (parts as string[]) : undefined,
      );
    }
  }
  if (
    name !== undefined &&
    PATH_CLASSES.has(name) &&
    (fn.type === "identifier" || object?.text === "pathlib") &&
    args.length === 1 &&
    first
  )
    return evaluate(first, names);
  if (fn.type !== "attribute" || !object) return undefined;
  if (name !== undefined && PATH_SAME_METHODS.has(name) && args.length === 0)
    return evaluate(object, names);
  if (name === "joinpath") {
    const parts = args.map(stringLiteral);
    return join(
      evaluate(object, names),
      parts.every((p) => p !== undefined) ? (parts as string[]) : undefined,
    );
  }
  return undefined;
}

function parent(value: Value | undefined): Value | undefined {
  if (value === undefined) return undefined;
  if (value.type === "file") return { type: "path", parts: [] };
  const last = value.parts.at(-1);
  return {
    type: "path",
    parts:
      last === undefined || last === ".."
        ? [...value.parts, ".."]
        : value.parts.slice(0, -1),
  };
}

function join(
  base: Value | undefined,
  parts: string[] | undefined,
): Value | undefined {
  if (base?.type !== "path" || parts === undefined) return undefined;
  const out = [...base.parts];
  for (const part of parts.flatMap((p) => p.split("/"))) {
    if (part === "" || part === ".") continue;
    if (part === ".." && out.length > 0 && out.at(-1) !== "..") out.pop();
    else out.push(part);
  }
  return { type: "path", parts: out };
}
