// PEP 508 requirement lines and pip requirements files: the distribution names they declare.

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { isNotFound, normaliseName } from "../../core/index.js";

/** A distribution an app declares, with where it says so. */
export interface DeclaredRequirement {
  /** The name as written. */
  name: string;
  /** PEP 503-normalised name: what selection compares. */
  key: string;
  /** Absolute path of the declaring file. */
  file: string;
  /** 1-based line of the declaration. */
  line: number;
  /** Marked optional (Poetry's `optional = true`): ships when installed, no finding when not. */
  optional: boolean;
  /**
   * The PEP 508 environment marker guarding it (`sys_platform == "win32"`), evaluated against
   * the target environment when the scan selects packages.
   */
  marker?: string;
}

/** A PEP 508 name: letters and digits, with `.`, `_`, `-` inside. */
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/;

/**
 * The name and the environment marker (if any) of one PEP 508 requirement
 * (`name [extras] (specifiers | @ url) [; marker]`); extras, versions and URLs are ignored.
 * Undefined when the text does not start with a name.
 */
export function parseRequirement(
  text: string,
): { name: string; marker?: string } | undefined {
  const trimmed = text.trim();
  const name = NAME.exec(trimmed)?.[0];
  if (name === undefined) return undefined;
  const rest = trimmed.slice(name.length).trimStart();
  // After the name only extras, a specifier, a URL or a marker may follow.
  if (rest !== "" && !/^[[(<>=!~;@,]/.test(rest)) return undefined;
  // `;` starts the marker, except inside a URL (`@ url ; marker` needs the space before it).
  const at = rest.startsWith("@")
    ? rest.search(/\s;/) + 1 || -1
    : rest.indexOf(";");
  const marker = at >= 0 ? rest.slice(at + 1).trim() : "";
  return marker === "" ? { name } : { name, marker };
}

/** A `-r FILE` line whose file does not exist. */
export interface MissingInclude {
  file: string;
  line: number;
  target: string;
}

/** What the requirements files read so far declare, and the includes that name no file. */
export interface RequirementsRead {
  requirements: DeclaredRequirement[];
  missing: MissingInclude[];
  /** Every file read (absolute), in order. */
  files: string[];
}

/**
 * Adds what a pip requirements file declares to `into`, following `-r`/`--requirement` includes
 * (relative to the including file; each file once). Constraint files (`-c`) declare nothing;
 * `-e` and URL lines count only when they name the distribution (`#egg=name`). Comments, line
 * continuations and options are handled as pip reads them.
 */
export async function readRequirementsFile(
  path: string,
  into: RequirementsRead,
): Promise<void> {
  if (into.files.includes(path)) return;
  const text = await readFile(path, "utf8");
  into.files.push(path);
  for (const { line, text: logical } of logicalLines(text)) {
    const words = logical.split(/\s+/);
    const first = words[0] ?? "";
    const target = includeTarget(words);
    if (target !== null) {
      if (target === "") continue;
      const included = resolve(dirname(path), target);
      try {
        await readRequirementsFile(included, into);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        into.missing.push({ file: path, line, target });
      }
      continue;
    }
    const egg = /#egg=([A-Za-z0-9._-]+)/.exec(logical)?.[1];
    if (
      first === "-e" ||
      first.startsWith("--editable") ||
      isUrlOrPath(first)
    ) {
      if (egg !== undefined) into.requirements.push(declared(egg, path, line));
      continue;
    }
    if (first.startsWith("-")) continue;
    // Per-requirement options (`--hash=…`) follow the requirement.
    const requirement = logical.split(/\s--?[a-z]/)[0] as string;
    const parsed = parseRequirement(requirement);
    if (parsed !== undefined)
      into.requirements.push(
        declared(parsed.name, path, line, { marker: parsed.marker }),
      );
  }
}

/** Builds a declaration. */
export function declared(
  name: string,
  file: string,
  line: number,
  guard: { optional?: boolean; marker?: string | undefined } = {},
): DeclaredRequirement {
  return {
    name,
    key: normaliseName(name),
    file,
    line,
    optional: guard.optional === true,
    ...(guard.marker ? { marker: guard.marker } : {}),
  };
}

/** Requirement lines with continuations joined and comments removed, each with its first line number. */
function logicalLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let joined = lines[i] as string;
    while (joined.endsWith("\\") && i + 1 < lines.length)
      joined = joined.slice(0, -1) + (lines[++i] as string);
    // pip drops `#` to the end of the line when it starts the line or follows whitespace.
    const stripped = joined.replace(/(^|\s)#.*$/, "").trim();
    if (stripped !== "") out.push({ line: start, text: stripped });
  }
  return out;
}

/** The file a `-r FILE`, `-rFILE` or `--requirement[=]FILE` line includes; null for other lines. */
function includeTarget(words: string[]): string | null {
  const first = words[0] ?? "";
  if (first === "-r" || first === "--requirement") return words[1] ?? "";
  if (first.startsWith("--requirement=")) return first.slice(14);
  if (first.startsWith("-r")) return first.slice(2);
  return null;
}

/** A requirement given as an archive path, a directory or a URL rather than a name. */
function isUrlOrPath(word: string): boolean {
  return (
    /^[a-z][a-z0-9+.-]*:\/\//i.test(word) ||
    word.startsWith(".") ||
    word.startsWith("/") ||
    word.startsWith("~") ||
    /\.(whl|zip|tar\.gz|tgz|tar\.bz2)$/i.test(word)
  );
}
