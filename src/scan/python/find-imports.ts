// Finds the import sites of one Python source file from its tree-sitter syntax tree.

import type { Node, Parser } from "web-tree-sitter";
import type { FileProblem } from "../../core/light.js";
import { findAssetPaths, type AssetPathSite } from "./asset-paths.js";
import { stringLiteral } from "./string-literal.js";

/** Where an import site is, 1-based, and whether a failure is tolerated at run time. */
interface SiteBase {
  line: number;
  column: number;
  /** Inside `try:` whose handlers catch ImportError or ModuleNotFoundError. */
  optional: boolean;
}

/**
 * A module named in the source. `level` counts leading dots (0 = absolute); `module` is the
 * dotted name after them ("" for `from . import x`). `names` are the names a `from` import takes
 * (empty for `import m` and for `from m import *`).
 */
export interface ModuleSite extends SiteBase {
  type: "module";
  kind: "python-import" | "python-dynamic";
  /** The module as written, e.g. `a.b`, `..pkg`, `.`. */
  specifier: string;
  level: number;
  module: string;
  fromImport: boolean;
  names: string[];
}

/** `__import__(x)` / `importlib.import_module(x)` whose module is not a literal. */
export interface DynamicSite extends SiteBase {
  type: "dynamic";
  /** The argument's source text (shortened). */
  text: string;
}

export type PythonImportSite = ModuleSite | DynamicSite;

/** The sites of one file, and the first syntax error when the source does not parse cleanly. */
export interface PythonImports {
  sites: PythonImportSite[];
  /** Paths the module builds from its own location (see {@link findAssetPaths}). */
  assets: AssetPathSite[];
  problem?: FileProblem;
}

const IMPORT_ERRORS = new Set(["ImportError", "ModuleNotFoundError"]);
const MAX_TEXT = 120;

/**
 * Parses `source` and lists its imports. `from __future__` and everything under
 * `if TYPE_CHECKING:` are left out. A syntax error is returned as `problem` (the first ERROR or
 * MISSING node); the imports tree-sitter recovered outside error nodes are still listed.
 */
export function findPythonImports(
  parser: Parser,
  source: string,
): PythonImports {
  const tree = parser.parse(source);
  if (tree === null)
    throw new Error("tree-sitter returned no tree for a Python source");
  try {
    const root = tree.rootNode;
    const sites: PythonImportSite[] = [];
    // An explicit stack instead of recursion: generated or hostile sources can nest deeply.
    const stack: Array<{ node: Node; optional: boolean }> = [
      { node: root, optional: false },
    ];
    while (stack.length > 0) {
      const { node, optional } = stack.pop() as {
        node: Node;
        optional: boolean;
      };
      const pushChildren = (
        children: Array<Node | null>,
        childOptional = optional,
      ) => {
        for (let i = children.length - 1; i >= 0; i--) {
          const child = children[i];
          if (child) stack.push({ node: child, optional: childOptional });
        }
      };
      switch (node.type) {
        case "ERROR":
        case "future_import_statement":
          continue;
        case "import_statement":
          for (const name of node.childrenForFieldName("name")) {
            const dotted =
              name?.type === "aliased_import"
                ? name.childForFieldName("name")
                : name;
            if (dotted?.type === "dotted_name")
              sites.push(
                moduleSite(dotted, optional, 0, dotted.text, false, []),
              );
          }
          continue;
        case "import_from_statement":
          sites.push(...fromImportSite(node, optional));
          continue;
        case "if_statement":
          if (isTypeCheckingTest(node.childForFieldName("condition"))) {
            pushChildren(node.childrenForFieldName("alternative"));
            continue;
          }
          break;
        case "try_statement":
          if (
            node.namedChildren.some(
              (c) => c?.type === "except_clause" && catchesImportError(c),
            )
          ) {
            pushChildren([node.childForFieldName("body")], true);
            pushChildren(node.namedChildren.filter((c) => c?.type !== "block"));
            continue;
          }
          break;
        case "call": {
          const site = dynamicImportSite(node, optional);
          if (site) sites.push(site);
          break;
        }
      }
      pushChildren(node.children);
    }
    const problem = root.hasError ? firstSyntaxError(root) : undefined;
    const assets = findAssetPaths(root);
    return problem ? { sites, assets, problem } : { sites, assets };
  } finally {
    tree.delete();
  }
}

function position(node: Node): { line: number; column: number } {
  return {
    line: node.startPosition.row + 1,
    column: node.startPosition.column + 1,
  };
}

function moduleSite(
  at: Node,
  optional: boolean,
  level: number,
  module: string,
  fromImport: boolean,
  names: string[],
  kind: ModuleSite["kind"] = "python-import",
): ModuleSite {
  const specifier = ".".repeat(level) + module;
  return {
    type: "module",
    kind,
    specifier,
    level,
    module,
    fromImport,
    names,
    optional,
    ...position(at),
  };
}

function fromImportSite(node: Node, optional: boolean): ModuleSite[] {
  const moduleName = node.childForFieldName("module_name");
  if (!moduleName) return [];
  let level = 0;
  let module = "";
  if (moduleName.type === "relative_import") {
    for (const child of moduleName.namedChildren) {
      if (child?.type === "import_prefix")
        level = child.text.replace(/\s/g, "").length;
      else if (child?.type === "dotted_name") module = child.text;
    }
  } else if (moduleName.type === "dotted_name") {
    module = moduleName.text;
  } else {
    return [];
  }
  const names: string[] = [];
  for (const name of node.childrenForFieldName("name")) {
    const dotted =
      name?.type === "aliased_import" ? name.childForFieldName("name") : name;
    if (dotted?.type === "dotted_name") names.push(dotted.text);
  }
  return [moduleSite(node, optional, level, module, true, names)];
}

/** `TYPE_CHECKING` or `<anything>.TYPE_CHECKING` (e.g. `typing.TYPE_CHECKING`). */
function isTypeCheckingTest(condition: Node | null): boolean {
  if (!condition) return false;
  if (condition.type === "identifier")
    return condition.text === "TYPE_CHECKING";
  if (condition.type === "attribute")
    return condition.childForFieldName("attribute")?.text === "TYPE_CHECKING";
  return false;
}

/** An `except` clause whose type is ImportError / ModuleNotFoundError, alone or in a tuple. */
function catchesImportError(clause: Node): boolean {
  let caught =
    clause.namedChildren.find(
      (c) => c !== null && c.type !== "block" && c.type !== "comment",
    ) ?? null;
  if (caught?.type === "as_pattern") caught = caught.namedChild(0);
  if (!caught) return false;
  const names =
    caught.type === "tuple" || caught.type === "parenthesized_expression"
      ? caught.namedChildren
      : [caught];
  return names.some((n) => n !== null && IMPORT_ERRORS.has(exceptionName(n)));
}

function exceptionName(node: Node): string {
  if (node.type === "identifier") return node.text;
  if (node.type === "attribute")
    return node.childForFieldName("attribute")?.text ?? "";
  return "";
}

/** `__import__(...)`, `importlib.import_module(...)` or a bare `import_module(...)`. */
function dynamicImportSite(
  call: Node,
  optional: boolean,
): PythonImportSite | undefined {
  const fn = call.childForFieldName("function");
  if (!fn) return undefined;
  let isImportModule = false;
  if (fn.type === "identifier") {
    if (fn.text === "import_module") isImportModule = true;
    else if (fn.text !== "__import__") return undefined;
  } else if (fn.type === "attribute") {
    const object = fn.childForFieldName("object");
    if (
      fn.childForFieldName("attribute")?.text !== "import_module" ||
      object?.text !== "importlib"
    )
      return undefined;
    isImportModule = true;
  } else {
    return undefined;
  }
  const args = call.childForFieldName("arguments");
  const positional = (args?.namedChildren ?? []).filter(
    (a): a is Node =>
      a !== null && a.type !== "keyword_argument" && a.type !== "comment",
  );
  const first = positional[0];
  if (!first) return undefined;
  const name = stringLiteral(first);
  const dynamic = (text: string): DynamicSite => ({
    type: "dynamic",
    text: text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text,
    optional,
    ...position(call),
  });
  if (name === undefined) return dynamic(first.text);
  const level = isImportModule ? (/^\.*/.exec(name)?.[0].length ?? 0) : 0;
  const module = name.slice(level);
  if (level === 0)
    return moduleSite(call, optional, 0, module, false, [], "python-dynamic");
  // A relative name needs its anchor package: a literal, or `__package__` (the calling file's own).
  const packageArg =
    positional[1] ??
    (args?.namedChildren ?? [])
      .find(
        (a) =>
          a?.type === "keyword_argument" &&
          a.childForFieldName("name")?.text === "package",
      )
      ?.childForFieldName("value") ??
    null;
  if (packageArg?.type === "identifier" && packageArg.text === "__package__") {
    return {
      ...moduleSite(call, optional, level, module, false, [], "python-dynamic"),
      specifier: name,
    };
  }
  const anchor = packageArg ? stringLiteral(packageArg) : undefined;
  if (anchor === undefined) return dynamic(call.text);
  const parts = anchor.split(".");
  if (level - 1 >= parts.length) return dynamic(call.text);
  const absolute = [
    ...parts.slice(0, parts.length - (level - 1)),
    ...(module ? [module] : []),
  ].join(".");
  return {
    ...moduleSite(call, optional, 0, absolute, false, [], "python-dynamic"),
    specifier: absolute,
  };
}

/** The first ERROR or MISSING node in document order, as a syntax-error problem. */
function firstSyntaxError(root: Node): FileProblem | undefined {
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const node = stack.pop() as Node;
    if (node.isError || node.isMissing) {
      const { line, column } = position(node);
      const message = node.isMissing
        ? `missing ${JSON.stringify(node.type)}`
        : `invalid syntax near ${JSON.stringify(node.text.split("\n")[0]?.slice(0, 40) ?? "")}`;
      return { reason: "syntax-error", message, line, column };
    }
    if (!node.hasError) continue;
    const children = node.children;
    for (let i = children.length - 1; i >= 0; i--) {
      const child = children[i];
      if (child) stack.push(child);
    }
  }
  return undefined;
}
