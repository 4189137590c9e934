// Declarations in setuptools' setup.cfg and setup.py and in pipenv's Pipfile, read statically:
// setup.py is parsed, never run.

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Node, Parser } from "web-tree-sitter";
import { isNotFound } from "../../core/light.js";
import { isMarkerVariable } from "./markers.js";
import {
  declared,
  parseRequirement,
  readRequirementsFile,
  type RequirementsRead,
} from "./requirements.js";

/**
 * Adds `[options] install_requires` of a setup.cfg (a dangling list, or one line split at `;` as
 * setuptools does; `file:` names requirements files) to `into`. `extras_require` is not read.
 */
export async function readSetupCfg(
  path: string,
  into: RequirementsRead,
): Promise<void> {
  const text = await readFile(path, "utf8");
  into.files.push(path);
  const lines = text.split(/\r?\n/);
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      section = (header[1] as string).trim();
      continue;
    }
    const key = /^([A-Za-z_-]+)\s*[=:]\s*(.*)$/.exec(line);
    if (section !== "options" || key === null) continue;
    if ((key[1] as string).replace(/-/g, "_") !== "install_requires") continue;
    const first = (key[2] as string).trim();
    const keyLine = i + 1;
    const values: Array<{ text: string; line: number }> = [];
    if (first !== "") values.push({ text: first, line: keyLine });
    // A value continues on indented lines; comments are whole lines.
    while (
      i + 1 < lines.length &&
      /^\s+\S|^\s*$/.test(lines[i + 1] as string)
    ) {
      const next = (lines[++i] as string).trim();
      if (next !== "" && !/^[#;]/.test(next))
        values.push({ text: next, line: i + 1 });
    }
    if (values.length === 1 && first.startsWith("file:")) {
      for (const name of first.slice(5).split(",")) {
        const target = name.trim();
        try {
          await readRequirementsFile(resolve(dirname(path), target), into);
        } catch (error) {
          if (!isNotFound(error)) throw error;
          into.missing.push({ file: path, line: keyLine, target });
        }
      }
      continue;
    }
    // One line is a `;`-separated list to setuptools; more lines are one requirement each.
    const items =
      values.length === 1 && first !== ""
        ? first.split(";").map((text) => ({ text, line: keyLine }))
        : values;
    for (const item of items) {
      if (item.text.trim().startsWith("#")) continue;
      const parsed = parseRequirement(item.text);
      if (parsed !== undefined)
        into.requirements.push(
          declared(parsed.name, path, item.line, { marker: parsed.marker }),
        );
    }
  }
}

/** What a setup.py's `install_requires` could not be read as: a finding's position and text. */
export interface UnreadSetupPy {
  file: string;
  line: number;
  column: number;
  text: string;
}

/**
 * Adds the literal `install_requires=[...]` of a setup.py's `setup(...)` call to `into` (a list or
 * tuple of string literals, or a name the module assigns one to). Anything else (a computed
 * list, a file read at run time) is returned, not guessed: setup.py is never run.
 */
export async function readSetupPy(
  path: string,
  parser: Parser,
  into: RequirementsRead,
): Promise<UnreadSetupPy[]> {
  const text = await readFile(path, "utf8");
  into.files.push(path);
  const tree = parser.parse(text);
  if (tree === null)
    throw new Error("tree-sitter returned no tree for setup.py");
  try {
    const unread: UnreadSetupPy[] = [];
    const assigned = new Map<string, Node>();
    for (const statement of tree.rootNode.namedChildren) {
      const assignment = statement?.firstNamedChild;
      if (
        statement?.type !== "expression_statement" ||
        assignment?.type !== "assignment"
      )
        continue;
      const left = assignment.childForFieldName("left");
      const right = assignment.childForFieldName("right");
      if (left?.type === "identifier" && right) assigned.set(left.text, right);
    }
    for (const call of tree.rootNode.descendantsOfType("call")) {
      const fn = call?.childForFieldName("function");
      const name =
        fn?.type === "attribute"
          ? fn.childForFieldName("attribute")?.text
          : fn?.text;
      if (call === null || name !== "setup") continue;
      for (const arg of call.childForFieldName("arguments")?.namedChildren ??
        []) {
        if (
          arg?.type !== "keyword_argument" ||
          arg.childForFieldName("name")?.text !== "install_requires"
        )
          continue;
        let value = arg.childForFieldName("value");
        if (value?.type === "identifier")
          value = assigned.get(value.text) ?? value;
        const items = value === null ? undefined : literalStrings(value);
        if (items === undefined) {
          unread.push({
            file: path,
            line: arg.startPosition.row + 1,
            column: arg.startPosition.column + 1,
            text:
              arg.text.length > 120 ? `${arg.text.slice(0, 120)}…` : arg.text,
          });
          continue;
        }
        for (const item of items) {
          const parsed = parseRequirement(item.value);
          if (parsed !== undefined)
            into.requirements.push(
              declared(parsed.name, path, item.line, { marker: parsed.marker }),
            );
        }
      }
    }
    return unread;
  } finally {
    tree.delete();
  }
}

/** The strings of a list or tuple of plain string literals; undefined for anything else. */
function literalStrings(
  node: Node,
): Array<{ value: string; line: number }> | undefined {
  if (node.type !== "list" && node.type !== "tuple") return undefined;
  const out: Array<{ value: string; line: number }> = [];
  for (const item of node.namedChildren) {
    if (item === null || item.type === "comment") continue;
    if (item.type !== "string") return undefined;
    let value = "";
    for (const part of item.namedChildren) {
      if (part?.type === "string_start" && /[fF]/.test(part.text))
        return undefined;
      if (part?.type === "interpolation") return undefined;
      if (part?.type === "string_content") value += part.text;
    }
    out.push({ value, line: item.startPosition.row + 1 });
  }
  return out;
}

/**
 * Adds a Pipfile's `[packages]` to `into` (never `[dev-packages]`): each key a distribution, its
 * table's `markers` and marker-variable keys (`sys_platform = "== 'win32'"`) its marker; a
 * `path` or `file` package (a local project or archive) is left out, as pip's path lines are.
 */
export function readPipfile(
  path: string,
  text: string,
  toml: Record<string, unknown>,
  into: RequirementsRead,
): void {
  into.files.push(path);
  const packages = toml["packages"];
  if (
    packages === null ||
    typeof packages !== "object" ||
    Array.isArray(packages)
  )
    return;
  const lines = text.split(/\r?\n/);
  for (const [name, spec] of Object.entries(
    packages as Record<string, unknown>,
  )) {
    const markers: string[] = [];
    if (spec !== null && typeof spec === "object" && !Array.isArray(spec)) {
      // A local path or archive (often the project itself) names no installed distribution.
      if ("path" in spec || "file" in spec) continue;
      for (const [key, value] of Object.entries(
        spec as Record<string, unknown>,
      )) {
        if (typeof value !== "string") continue;
        if (key === "markers") markers.push(`(${value})`);
        else if (isMarkerVariable(key)) markers.push(`${key} ${value}`);
      }
    }
    const index = lines.findIndex((line) =>
      new RegExp(
        `^\\s*["']?${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}["']?\\s*=`,
      ).test(line),
    );
    into.requirements.push(
      declared(name, path, index + 1 || 1, {
        marker: markers.length > 0 ? markers.join(" and ") : undefined,
      }),
    );
  }
}
