// Finds the import sites of one JS/TS source: static imports, re-exports, import(), require() and friends.

import { parse, type ParserPlugin } from "@babel/parser";
import { VISITOR_KEYS, type Node } from "@babel/types";
import type { FileProblem, ImportKind } from "../../core/index.js";

/** A specifier the code names statically, or the static parts of a computed one. */
export type ImportTarget =
  | { type: "literal"; specifier: string }
  /** A template or concatenation: the string before the first and after the last computed part. */
  | { type: "pattern"; prefix: string; suffix: string; text: string }
  /** Nothing static to go on. */
  | { type: "dynamic"; text: string };

/** One place in a file that loads another module or file. */
export interface ImportSite {
  target: ImportTarget;
  kind: ImportKind | "asset";
  line: number;
  column: number;
  /** Inside a `try` block: the code expects that loading may fail. */
  optional: boolean;
  /** Source offsets [start, end) of a literal specifier, quotes included (for rewriting). */
  range?: [number, number];
}

/** The result of reading one file's imports. */
export interface FoundImports {
  sites: ImportSite[];
  problem?: FileProblem;
}

/** Child keys that only hold type annotations: never a runtime import. */
const TYPE_KEYS = new Set([
  "typeAnnotation",
  "returnType",
  "typeParameters",
  "typeArguments",
  "superTypeParameters",
]);

/** Per node type, the keys that hold child nodes (from babel's own table), minus type-only ones. */
const CHILD_KEYS = new Map(
  Object.entries(VISITOR_KEYS).map(([type, keys]) => [
    type,
    keys.filter((k) => !TYPE_KEYS.has(k)),
  ]),
);

/** Node types that cannot contain runtime imports (TypeScript-only declarations). */
const TYPE_ONLY_NODES = new Set([
  "TSInterfaceDeclaration",
  "TSTypeAliasDeclaration",
  "TSDeclareFunction",
  "TSModuleDeclaration",
  "TSImportType",
  "TSTypeReference",
]);

/** Cheap test that lets files with no module syntax skip parsing entirely. */
const MAY_IMPORT = /\b(?:import|require|export|createRequire)\b/;

/**
 * Parses `text` (a file with extension `ext`) and lists its import sites.
 * A syntax error is returned as a `problem` with line and column, never thrown.
 * With `skipObvious`, a file with no module syntax at all is not parsed (used for packages'
 * files, whose syntax errors are not the app's to report).
 */
export function findImports(
  text: string,
  ext: string,
  skipObvious = false,
): FoundImports {
  if (skipObvious && !MAY_IMPORT.test(text)) return { sites: [] };
  let ast: Node;
  try {
    ast = parse(text, {
      sourceType: ext === ".cjs" || ext === ".cts" ? "script" : "unambiguous",
      plugins: pluginsFor(ext),
      allowReturnOutsideFunction: true,
      allowAwaitOutsideFunction: true,
      allowImportExportEverywhere: true,
      allowUndeclaredExports: true,
      createImportExpressions: true,
      errorRecovery: true,
    }).program;
  } catch (error) {
    const e = error as {
      message?: string;
      loc?: { line: number; column: number };
    };
    return {
      sites: [],
      problem: {
        reason: "syntax-error",
        message: (e.message ?? String(error)).replace(/ \(\d+:\d+\)$/, ""),
        ...(e.loc ? { line: e.loc.line, column: e.loc.column + 1 } : {}),
      },
    };
  }
  const finder = new SiteFinder(text);
  finder.visit(ast, false);
  return { sites: finder.sites };
}

function pluginsFor(ext: string): ParserPlugin[] {
  const common: ParserPlugin[] = [
    "importAttributes",
    "decorators-legacy",
    "explicitResourceManagement",
  ];
  if (ext === ".ts" || ext === ".mts" || ext === ".cts")
    return [...common, "typescript"];
  if (ext === ".tsx") return [...common, "typescript", "jsx"];
  return [...common, "jsx"];
}

class SiteFinder {
  readonly sites: ImportSite[] = [];
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  /** Local names bound to `createRequire(...)` results. */
  readonly #requireNames = new Set(["require"]);

  visit(node: Node, optional: boolean): void {
    if (TYPE_ONLY_NODES.has(node.type)) return;
    this.#inspect(node, optional);
    if (node.type === "TryStatement") {
      this.visit(node.block, true);
      if (node.handler) this.visit(node.handler, optional);
      if (node.finalizer) this.visit(node.finalizer, optional);
      return;
    }
    for (const key of CHILD_KEYS.get(node.type) ?? []) {
      const child = (node as unknown as Record<string, unknown>)[key];
      if (Array.isArray(child)) {
        for (const item of child) if (isNode(item)) this.visit(item, optional);
      } else if (isNode(child)) {
        this.visit(child, optional);
      }
    }
  }

  #inspect(node: Node, optional: boolean): void {
    switch (node.type) {
      case "ImportDeclaration": {
        if (node.importKind === "type" || node.importKind === "typeof") return;
        const specifiers = node.specifiers;
        const allTypes =
          specifiers.length > 0 &&
          specifiers.every(
            (s) =>
              s.type === "ImportSpecifier" &&
              (s.importKind === "type" || s.importKind === "typeof"),
          );
        if (!allTypes)
          this.#add(
            node,
            { type: "literal", specifier: node.source.value },
            "import",
            optional,
            node.source,
          );
        return;
      }
      case "ExportNamedDeclaration":
      case "ExportAllDeclaration":
        if (node.source && node.exportKind !== "type") {
          this.#add(
            node,
            { type: "literal", specifier: node.source.value },
            "export",
            optional,
            node.source,
          );
        }
        return;
      case "ImportExpression":
        this.#add(
          node,
          targetOf(node.source),
          "dynamic-import",
          optional,
          node.source,
        );
        return;
      case "TSImportEqualsDeclaration":
        if (
          node.importKind !== "type" &&
          node.moduleReference.type === "TSExternalModuleReference"
        ) {
          this.#add(
            node,
            {
              type: "literal",
              specifier: node.moduleReference.expression.value,
            },
            "require",
            optional,
            node.moduleReference.expression,
          );
        }
        return;
      case "VariableDeclarator":
        if (
          node.id.type === "Identifier" &&
          node.init &&
          isCreateRequireCall(node.init)
        ) {
          this.#requireNames.add(node.id.name);
        }
        return;
      case "NewExpression":
        // new URL("./file", import.meta.url): a file the module reads next to itself.
        if (
          node.callee.type === "Identifier" &&
          node.callee.name === "URL" &&
          node.arguments.length === 2 &&
          isImportMetaUrl(node.arguments[1])
        ) {
          const target = targetOf(node.arguments[0]);
          if (target.type === "literal" && target.specifier.startsWith("."))
            this.#add(node, target, "asset", optional, node.arguments[0]);
        }
        return;
      case "CallExpression":
        this.#inspectCall(node, optional);
        return;
      default:
        return;
    }
  }

  #inspectCall(
    node: Extract<Node, { type: "CallExpression" }>,
    optional: boolean,
  ): void {
    const callee = node.callee;
    const [first] = node.arguments;
    if (first === undefined) return;
    if (callee.type === "Import") {
      this.#add(node, targetOf(first), "dynamic-import", optional, first);
    } else if (
      callee.type === "Identifier" &&
      this.#requireNames.has(callee.name)
    ) {
      this.#add(node, targetOf(first), "require", optional, first);
    } else if (
      callee.type === "MemberExpression" &&
      !callee.computed &&
      callee.property.type === "Identifier" &&
      callee.property.name === "resolve"
    ) {
      const object = callee.object;
      if (object.type === "Identifier" && this.#requireNames.has(object.name)) {
        this.#add(node, targetOf(first), "require-resolve", optional, first);
      } else if (
        object.type === "MetaProperty" &&
        object.meta.name === "import"
      ) {
        this.#add(node, targetOf(first), "require-resolve", optional, first);
      }
    }
  }

  #add(
    node: Node,
    target: ImportTarget,
    kind: ImportSite["kind"],
    optional: boolean,
    argument?: Node,
  ): void {
    if (
      target.type !== "literal" &&
      argument?.start != null &&
      argument.end != null
    ) {
      target = {
        ...target,
        text: this.#text
          .slice(argument.start, argument.end)
          .replace(/\s+/g, " "),
      };
    }
    const start = node.loc?.start;
    const isLiteralNode =
      argument?.type === "StringLiteral" ||
      (argument?.type === "TemplateLiteral" &&
        argument.expressions.length === 0);
    this.sites.push({
      target,
      kind,
      line: start?.line ?? 0,
      column: (start?.column ?? 0) + 1,
      optional,
      ...(target.type === "literal" &&
      isLiteralNode &&
      argument.start != null &&
      argument.end != null
        ? { range: [argument.start, argument.end] as [number, number] }
        : {}),
    });
  }
}

function isNode(value: unknown): value is Node {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { type?: unknown }).type === "string"
  );
}

function isCreateRequireCall(node: Node): boolean {
  if (node.type !== "CallExpression") return false;
  const callee = node.callee;
  if (callee.type === "Identifier")
    return (
      callee.name === "createRequire" || callee.name === "createRequireFromPath"
    );
  return (
    callee.type === "MemberExpression" &&
    !callee.computed &&
    callee.property.type === "Identifier" &&
    callee.property.name === "createRequire"
  );
}

function isImportMetaUrl(node: Node | undefined): boolean {
  return (
    node !== undefined &&
    node.type === "MemberExpression" &&
    node.object.type === "MetaProperty" &&
    node.object.meta.name === "import" &&
    node.property.type === "Identifier" &&
    node.property.name === "url"
  );
}

/** Reduces a specifier expression to a literal, a pattern with static ends, or nothing static. */
export function targetOf(node: Node | undefined): ImportTarget {
  if (node === undefined) return { type: "dynamic", text: "" };
  const parts = flatten(node);
  if (parts.every((p) => typeof p === "string"))
    return { type: "literal", specifier: parts.join("") };
  const firstDynamic = parts.findIndex((p) => typeof p !== "string");
  const lastDynamic =
    parts.length -
    1 -
    [...parts].reverse().findIndex((p) => typeof p !== "string");
  const prefix = parts.slice(0, firstDynamic).join("");
  const suffix = parts.slice(lastDynamic + 1).join("");
  const text = parts.map((p) => (typeof p === "string" ? p : "${…}")).join("");
  if (prefix === "" && suffix === "") return { type: "dynamic", text };
  return { type: "pattern", prefix, suffix, text };
}

/** Splits `"a" + x + "b"` and `` `a${x}b` `` into static strings and computed nodes. */
function flatten(node: Node): Array<string | Node> {
  switch (node.type) {
    case "StringLiteral":
      return [node.value];
    case "TemplateLiteral": {
      const out: Array<string | Node> = [];
      node.quasis.forEach((quasi, i) => {
        out.push(quasi.value.cooked ?? quasi.value.raw);
        const expression = node.expressions[i];
        if (expression) out.push(...flatten(expression as Node));
      });
      return out;
    }
    case "BinaryExpression":
      if (node.operator === "+" && node.left.type !== "PrivateName") {
        return [...flatten(node.left), ...flatten(node.right)];
      }
      return [node];
    case "TSAsExpression":
    case "TSSatisfiesExpression":
    case "TSNonNullExpression":
    case "ParenthesizedExpression":
      return flatten(node.expression);
    default:
      return [node];
  }
}
