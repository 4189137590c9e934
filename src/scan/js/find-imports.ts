// Finds the import sites of one JS/TS source: static imports, re-exports, import(), require() and friends.
//
// Three parsers feed one visitor. Plain JavaScript goes through meriyah first: a build scans
// hundreds of package files in a process whose JIT is still cold, where meriyah's much smaller
// parser is about twice as fast, and a JavaScript app whose files it reads never loads babel.
// TypeScript goes through oxc-parser (native: no JIT to warm, and a fresh process loads it in a
// fraction of babel's time), and so do packages' JavaScript files in a one-shot process (the
// CLI), whose JIT never warms up enough for meriyah to beat it. Whatever neither accepts (syntax
// errors, and in the app's files any JavaScript proposal) is read by @babel/parser (error
// recovery, exact syntax errors), so the sites found never depend on which parser succeeded
// (differential tests hold each to babel's answer).

import { createRequire } from "node:module";
import type { ParserPlugin } from "@babel/parser";
import type { Node } from "@babel/types";
import type { Options as EstreeOptions } from "meriyah";
import {
  isOneShotProcess,
  type FileProblem,
  type ImportKind,
} from "../../core/light.js";

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

const require = createRequire(import.meta.url);

/** meriyah's parser, loaded on first use (a Python scan loads this module and never parses JS). */
let meriyahParse: typeof import("meriyah").parse | undefined;

function parseEstree(
  ...args: Parameters<typeof import("meriyah").parse>
): ReturnType<typeof import("meriyah").parse> {
  meriyahParse ??= (require("meriyah") as typeof import("meriyah")).parse;
  return meriyahParse(...args);
}

/** What a babel reading needs: the parser and, per node type, the keys that hold child nodes. */
interface Babel {
  parse: typeof import("@babel/parser").parse;
  /** From babel's own table, minus type-only keys. */
  childKeys: Map<string, string[]>;
}

let babel: Babel | undefined;

/**
 * Babel, loaded on first use: a Python scan, which loads this module with the scan layer, never
 * pays for it. Required rather than imported: both packages are CommonJS, and an ESM import of
 * them first scans their whole source for export names. The visitor table comes from the
 * definitions alone (the rest of @babel/types, its builders and validators, costs several times
 * as much to load).
 */
function loadBabel(): Babel {
  if (babel !== undefined) return babel;
  const { parse } = require("@babel/parser") as typeof import("@babel/parser");
  const { VISITOR_KEYS } = require("@babel/types/lib/definitions/index.js") as {
    VISITOR_KEYS: Record<string, string[]>;
  };
  const childKeys = new Map(
    Object.entries(VISITOR_KEYS).map(([type, keys]) => [
      type,
      keys.filter((k) => !TYPE_KEYS.has(k)),
    ]),
  );
  return (babel = { parse, childKeys });
}

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

/** Files meriyah reads (plain JavaScript; TypeScript goes to oxc-parser, JSX files to babel). */
const ESTREE_SOURCE_TYPES: Record<string, EstreeOptions["sourceType"][]> = {
  ".cjs": ["commonjs"],
  ".mjs": ["module"],
  // Like babel's "unambiguous": a file that opens a line with import/export is tried as a
  // module first, anything else as CommonJS first.
  ".js": ["commonjs", "module"],
};

/**
 * Parses `text` (a file with extension `ext`) and lists its import sites.
 * A syntax error is returned as a `problem` with line and column, never thrown.
 * Plain JavaScript is read by meriyah when it can, else by babel. With `inPackage` (a package's
 * file, whose syntax errors are not the app's to report), a file with no module syntax at all is
 * not parsed, and meriyah also reads stage-3 proposals.
 */
export function findImports(
  text: string,
  ext: string,
  inPackage = false,
): FoundImports {
  if (inPackage && !MAY_IMPORT.test(text)) return { sites: [] };
  const lexed = inPackage ? lexStaticImports(text, ext) : null;
  if (lexed !== null) return { sites: lexed };
  // TypeScript, and in a one-shot process (the CLI) a package's JavaScript too: oxc-parser's.
  if (TYPESCRIPT.has(ext) || (inPackage && isOneShotProcess())) {
    const found = findImportsWithOxc(text, ext);
    if (found !== null) return found;
  }
  const program = parseWithMeriyah(text, ext, inPackage);
  if (program !== null) return sitesIn(text, program);
  return findImportsWithBabel(text, ext);
}

/** The sites of a program of `text`: an ESTree (meriyah's or oxc-parser's), else babel's AST. */
function sitesIn(text: string, program: Node, estree = true): FoundImports {
  const finder = new SiteFinder(text, estree);
  finder.visit(program, false);
  return { sites: finder.sites };
}

/**
 * The import sites oxc-parser's reading of `text` gives, or null when it does not read the file
 * (see {@link parseWithOxc}).
 */
export function findImportsWithOxc(
  text: string,
  ext: string,
): FoundImports | null {
  const program = parseWithOxc(text, ext);
  return program === null ? null : sitesIn(text, program);
}

/** Words of every site that is not a static import or export-from (see SITE_WORDS). */
const NON_STATIC_WORDS = /require|Require|URL|dirname/;

let lexer: typeof import("es-module-lexer") | undefined;

/**
 * The sites of a package's ES module whose only sites are static imports and export-froms, read
 * by es-module-lexer; null for any other file (the parsers read it). A cold process scans hundreds
 * of such files (date-fns alone is 300): the lexer reads them several times faster than meriyah
 * does before the JIT warms up. Its answers equal the parsers' (a differential test holds them on
 * every file of a real node_modules). A file the lexer rejects goes to the parsers.
 */
export function lexStaticImports(
  text: string,
  ext: string,
): ImportSite[] | null {
  if (ext !== ".mjs" && ext !== ".js") return null;
  if (NON_STATIC_WORDS.test(text)) return null;
  if (lexer === undefined) {
    lexer = require("es-module-lexer") as typeof import("es-module-lexer");
    lexer.initSync();
  }
  let imports: ReturnType<typeof lexer.parse>[0];
  try {
    [imports] = lexer.parse(text);
  } catch {
    return null;
  }
  let starts: number[] | undefined;
  const sites: ImportSite[] = [];
  for (const found of imports) {
    // Dynamic imports, import.meta and import phases are the parsers' to read.
    if (found.t !== 1 || found.n === undefined) return null;
    starts ??= lineStarts(text);
    const line = firstAtOrAfter(starts, found.ss + 1) - 1;
    sites.push({
      target: { type: "literal", specifier: found.n },
      kind: text.startsWith("import", found.ss) ? "import" : "export",
      line: line + 1,
      column: found.ss - (starts[line] as number) + 1,
      optional: false,
      range: [found.s - 1, found.e + 1],
    });
  }
  return sites;
}

/** The import sites babel finds (the reference reading, and the only one for TypeScript). */
export function findImportsWithBabel(text: string, ext: string): FoundImports {
  const { parse } = loadBabel();
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
  return sitesIn(text, ast, false);
}

/**
 * Plain JavaScript as an ESTree program, or null when meriyah does not read it in any of the
 * file's source types (babel then decides: it recovers from errors meriyah rejects).
 * `proposals` (a package's file) also accepts stage-3 syntax (decorators, import phases); an app
 * file using any goes to babel, whose plugins decide what the app may use, as before.
 * Without `loc`: positions come from the `start` offsets, only for the nodes that are sites.
 */
export function parseWithMeriyah(
  text: string,
  ext: string,
  proposals = true,
): Node | null {
  const types = ESTREE_SOURCE_TYPES[ext];
  if (types === undefined) return null;
  const order =
    types.length > 1 && looksLikeModule(text) ? [...types].reverse() : types;
  for (const sourceType of order) {
    try {
      return parseEstree(text, {
        sourceType,
        next: proposals,
        jsx: true,
        webcompat: true,
        // start and end only: a [start, end] array on every node is garbage the scan pays for.
        ranges: { start: true, end: true, range: false },
        validateRegex: false,
      }) as unknown as Node;
    } catch {
      // Not this source type (or not meriyah's syntax): try the next, then babel.
    }
  }
  return null;
}

/** oxc-parser's parseSync, loaded on first use; null when it cannot load here (babel reads then). */
let oxcParse: typeof import("oxc-parser").parseSync | null | undefined;

/** The TypeScript extensions: oxc-parser's to read in every process (babel's when it errs). */
const TYPESCRIPT = new Set([".ts", ".tsx", ".mts", ".cts"]);

/** How oxc-parser reads each extension: as babel does TypeScript, as meriyah does JavaScript. */
const OXC_SOURCE_TYPES: Record<string, "commonjs" | "module" | "unambiguous"> =
  {
    ".ts": "unambiguous",
    ".tsx": "unambiguous",
    ".mts": "unambiguous",
    ".cts": "commonjs",
    ".js": "unambiguous",
    ".cjs": "commonjs",
    ".mjs": "module",
  };

/**
 * A TypeScript or plain JavaScript file as an ESTree program (TS-ESTree: type-only imports and
 * exports keep their `importKind`/`exportKind`, as babel's do), or null when oxc-parser finds any
 * error (a CommonJS `.js` file that returns at top level, too), does not read the extension, or
 * is not available on this platform: meriyah or babel then decides.
 */
export function parseWithOxc(text: string, ext: string): Node | null {
  const sourceType = OXC_SOURCE_TYPES[ext];
  if (sourceType === undefined) return null;
  if (oxcParse === undefined) {
    try {
      oxcParse = (require("oxc-parser") as typeof import("oxc-parser"))
        .parseSync;
    } catch {
      oxcParse = null;
    }
  }
  if (oxcParse === null) return null;
  const result = oxcParse(`file${ext}`, text, {
    sourceType,
    // Parentheses leave no node, as in babel's and meriyah's trees.
    preserveParens: false,
  });
  return result.errors.length > 0 ? null : (result.program as unknown as Node);
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
  /** An ESTree from meriyah (children under every key, no `loc`) rather than babel's AST. */
  readonly #estree: boolean;
  /** Babel's child keys per node type; unused for an ESTree. */
  readonly #childKeys: Map<string, string[]> | undefined;
  /** Offsets where lines start, built on the first site of a tree without `loc`. */
  #lineStarts: number[] | undefined;

  constructor(text: string, estree: boolean) {
    this.#text = text;
    this.#estree = estree;
    this.#childKeys = estree ? undefined : loadBabel().childKeys;
  }

  /** Local names bound to `createRequire(...)` results. */
  readonly #requireNames = new Set(["require"]);
  /**
   * Offsets of the words every site's text holds (ESTree only): a subtree whose range holds none
   * is skipped, unless a `createRequire` name (which can be any word) is in play.
   */
  #marks: number[] | undefined;

  visit(node: Node, optional: boolean): void {
    if (TYPE_ONLY_NODES.has(node.type)) return;
    if (this.#estree && !this.#mayHoldSite(node)) return;
    this.#inspect(node, optional);
    if (node.type === "TryStatement") {
      this.visit(node.block, true);
      if (node.handler) this.visit(node.handler, optional);
      if (node.finalizer) this.visit(node.finalizer, optional);
      return;
    }
    const fields = node as unknown as Record<string, unknown>;
    if (this.#estree) {
      // ESTree nodes hold their children under their own keys, in source order.
      for (const key in fields)
        if (key !== "type") this.#visitChild(fields[key], optional);
    } else {
      for (const key of this.#childKeys?.get(node.type) ?? [])
        this.#visitChild(fields[key], optional);
    }
  }

  #visitChild(child: unknown, optional: boolean): void {
    if (Array.isArray(child)) {
      for (const item of child) if (isNode(item)) this.visit(item, optional);
    } else if (isNode(child)) {
      this.visit(child, optional);
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
    const asset = pathFromOwnDirectory(node);
    if (asset !== undefined) {
      this.#add(node, { type: "literal", specifier: asset }, "asset", optional);
      return;
    }
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
    const start = node.loc?.start ?? this.#position(node.start);
    const literal =
      argument !== undefined &&
      (stringValue(argument) !== undefined ||
        (argument.type === "TemplateLiteral" &&
          argument.expressions.length === 0))
        ? argument
        : undefined;
    this.sites.push({
      target,
      kind,
      line: start?.line ?? 0,
      column: (start?.column ?? 0) + 1,
      optional,
      ...(target.type === "literal" &&
      literal?.start != null &&
      literal.end != null
        ? { range: [literal.start, literal.end] as [number, number] }
        : {}),
    });
  }

  #mayHoldSite(node: Node): boolean {
    if (this.#requireNames.size > 1 || node.start == null || node.end == null)
      return true;
    const marks = (this.#marks ??= siteMarks(this.#text));
    const first = marks[firstAtOrAfter(marks, node.start)];
    return first !== undefined && first < node.end;
  }

  /** Line (1-based) and column (0-based, UTF-16 units) of an offset, as babel counts them. */
  #position(
    offset: number | null | undefined,
  ): { line: number; column: number } | undefined {
    if (offset == null) return undefined;
    if (this.#lineStarts === undefined)
      this.#lineStarts = lineStarts(this.#text);
    const starts = this.#lineStarts;
    // The last line starting at or before the offset (the first starts at 0).
    const line = firstAtOrAfter(starts, offset + 1) - 1;
    return { line: line + 1, column: offset - (starts[line] as number) };
  }
}

/** The index of the first number in ascending `sorted` that is ≥ `value` (its length if none). */
function firstAtOrAfter(sorted: number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((sorted[mid] as number) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Words in the text of every site: require(…), import …, export … from, new URL(…),
 * join/resolve(__dirname, …) (import.meta.dirname holds "import"), and of every createRequire(…)
 * that names another require.
 */
const SITE_WORDS = /require|Require|import|export|URL|dirname/g;

/**
 * Ascending offsets of SITE_WORDS occurrences in `text` (as substrings: a superset), in one pass.
 * An occurrence overlapping an earlier one is left out: two words can only overlap inside one
 * token (`requirequire`), so every node holding the one holds the other's offset too.
 */
function siteMarks(text: string): number[] {
  const marks: number[] = [];
  SITE_WORDS.lastIndex = 0;
  for (let m = SITE_WORDS.exec(text); m !== null; m = SITE_WORDS.exec(text))
    marks.push(m.index);
  return marks;
}

/** Like babel's "unambiguous" guess: a line opening with import or export. */
function looksLikeModule(text: string): boolean {
  return (
    /^\s*(?:import|export)\b/.test(text) ||
    /\n[ \t]*(?:import|export)\b/.test(text)
  );
}

/** The line terminators of ECMAScript. */
const LINE_BREAK = /\r\n?|[\n\u2028\u2029]/g;
const OTHER_LINE_BREAK = /[\r\u2028\u2029]/;

/** Offsets where the lines of `text` start. */
function lineStarts(text: string): number[] {
  const starts = [0];
  if (OTHER_LINE_BREAK.test(text)) {
    for (const match of text.matchAll(LINE_BREAK))
      starts.push(match.index + match[0].length);
  } else {
    // The common case, and far cheaper than the regex: "\n" is the only terminator.
    for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1))
      starts.push(at + 1);
  }
  return starts;
}

/** The value of a string literal node (babel's StringLiteral or ESTree's Literal), else undefined. */
function stringValue(node: Node): string | undefined {
  if (node.type === "StringLiteral") return node.value;
  const estree = node as unknown as { type: string; value?: unknown };
  return estree.type === "Literal" && typeof estree.value === "string"
    ? estree.value
    : undefined;
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

/**
 * `path.join(__dirname, "views")`, `resolve(import.meta.dirname, "..", ".env")`: a path built
 * from the module's own directory and string literals only, as a relative specifier (`./views`);
 * anything else undefined. Any object's `join`/`resolve` counts (`path`, `posix`, a renamed
 * import) since the first argument must be the module's directory.
 */
function pathFromOwnDirectory(
  node: Extract<Node, { type: "CallExpression" }>,
): string | undefined {
  const callee = node.callee;
  const name =
    callee.type === "Identifier"
      ? callee.name
      : callee.type === "MemberExpression" &&
          !callee.computed &&
          callee.property.type === "Identifier"
        ? callee.property.name
        : undefined;
  if (name !== "join" && name !== "resolve") return undefined;
  const [base, ...rest] = node.arguments;
  if (base === undefined || rest.length === 0 || !isOwnDirectory(base))
    return undefined;
  const parts: string[] = [];
  for (const argument of rest) {
    const value = stringValue(argument as Node);
    if (value === undefined) return undefined;
    // resolve() restarts at an absolute part: no longer a path under the module's directory.
    if (value.startsWith("/") && name === "resolve") return undefined;
    parts.push(value);
  }
  return `./${parts.join("/")}`;
}

/** `__dirname` or `import.meta.dirname`. */
function isOwnDirectory(node: Node): boolean {
  if (node.type === "Identifier") return node.name === "__dirname";
  return (
    node.type === "MemberExpression" &&
    node.object.type === "MetaProperty" &&
    node.object.meta.name === "import" &&
    node.property.type === "Identifier" &&
    node.property.name === "dirname"
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
  const value = stringValue(node);
  if (value !== undefined) return [value];
  switch (node.type) {
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
