// What a Python app declares it needs: pyproject.toml ([project] dependencies, Poetry's
// dependencies) and its requirements*.txt files, found at or above the entry's directory.

import { readFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  InputError,
  compare,
  isNotFound,
  type UnresolvedEntry,
} from "../../core/light.js";
import type { CondaPrefix } from "../conda/index.js";
import {
  declared,
  parseRequirement,
  readRequirementsFile,
  type RequirementsRead,
} from "./requirements.js";

/**
 * Requirements files that are the Python world's devDependencies (test, lint, docs, CI tools):
 * not read, as Node's devDependencies are not.
 */
const DEV_REQUIREMENTS =
  /(?:^|[-_.])(?:dev|devel|develop|development|test|tests|testing|docs?|lint|typing|ci)(?:[-_.]|$)/i;

/** Requirements files that declare run-time needs: `requirements*.txt`, less the dev ones. */
function requirementsFiles(names: string[]): string[] {
  return names
    .filter((n) => /^requirements.*\.txt$/.test(n))
    .filter((n) => !DEV_REQUIREMENTS.test(n.slice("requirements".length, -4)))
    .sort(compare);
}

/**
 * The app's project directory: the nearest directory at or above `entryDir` that holds a
 * `pyproject.toml` or a `requirements*.txt` (the search stops at a directory with `.git`).
 * Null when there is none.
 */
export async function findProjectDir(entryDir: string): Promise<string | null> {
  for (let dir = entryDir; ; dir = dirname(dir)) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      // A directory above the app that this user may not list ends the search.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM") return null;
      throw error;
    }
    if (names.includes("pyproject.toml") || requirementsFiles(names).length > 0)
      return dir;
    if (names.includes(".git") || dirname(dir) === dir) return null;
  }
}

/**
 * What the project directory's pyproject.toml and requirements files declare (none: empty).
 * @throws InputError ENVPACK_INPUT_SYNTAX_ERROR for a pyproject.toml that is not TOML
 */
export async function readDeclarations(dir: string): Promise<RequirementsRead> {
  const names = await readdir(dir);
  const read: RequirementsRead = { requirements: [], missing: [], files: [] };
  if (names.includes("pyproject.toml"))
    await readPyproject(join(dir, "pyproject.toml"), read);
  for (const name of requirementsFiles(names))
    await readRequirementsFile(join(dir, name), read);
  return read;
}

/**
 * `[tool.envpack] include` of the project's pyproject.toml (none without one): distribution
 * names and globs of project files.
 * @throws InputError ENVPACK_INPUT_SYNTAX_ERROR for a pyproject.toml that is not TOML,
 *   ENVPACK_INPUT_INCLUDE_MISSING when the include is not a list of strings
 */
export async function readPyprojectIncludes(dir: string): Promise<string[]> {
  const path = join(dir, "pyproject.toml");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const include = table(
    table((await parseToml(path, text))["tool"])?.["envpack"],
  )?.["include"];
  if (include === undefined) return [];
  if (!Array.isArray(include) || !include.every((i) => typeof i === "string"))
    throw new InputError(
      "ENVPACK_INPUT_INCLUDE_MISSING",
      `${path}: [tool.envpack] include must be a list of distribution names and globs`,
      {
        hint: 'e.g. [tool.envpack]\ninclude = ["six", "templates/**"]',
        details: { file: path },
      },
    );
  return include as string[];
}

/** Parses a TOML file's text. @throws InputError ENVPACK_INPUT_SYNTAX_ERROR */
async function parseToml(
  path: string,
  text: string,
): Promise<Record<string, unknown>> {
  const { parse, TomlError } = await import("smol-toml");
  try {
    return parse(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    throw new InputError(
      "ENVPACK_INPUT_SYNTAX_ERROR",
      `${path}:${error.line}:${error.column}: not valid TOML: ${error.message.split("\n")[0] ?? ""}`,
      {
        hint: "Fix pyproject.toml, or scan with --only-imported to read no declarations.",
        details: { file: path, line: error.line, column: error.column },
        cause: error,
      },
    );
  }
}

/** Adds `[project] dependencies` and `[tool.poetry.dependencies]` (less `python`) to `into`. */
async function readPyproject(
  path: string,
  into: RequirementsRead,
): Promise<void> {
  const text = await readFile(path, "utf8");
  into.files.push(path);
  const toml = await parseToml(path, text);
  const project = table(toml["project"]);
  const dependencies = project?.["dependencies"];
  if (Array.isArray(dependencies)) {
    for (const item of dependencies) {
      if (typeof item !== "string") continue;
      const parsed = parseRequirement(item);
      if (parsed !== undefined)
        into.requirements.push(
          declared(parsed.name, path, lineOf(text, item), parsed.marker),
        );
    }
  }
  const poetry = table(
    table(table(toml["tool"])?.["poetry"])?.["dependencies"],
  );
  for (const [name, spec] of Object.entries(poetry ?? {})) {
    if (name.toLowerCase() === "python") continue;
    // A table may make the dependency optional (an extra) or conditional; a list holds
    // alternatives for different conditions.
    const conditional =
      Array.isArray(spec) ||
      (table(spec) !== undefined &&
        (table(spec)?.["optional"] === true ||
          table(spec)?.["markers"] !== undefined ||
          table(spec)?.["python"] !== undefined ||
          table(spec)?.["platform"] !== undefined));
    into.requirements.push(
      declared(name, path, keyLine(text, name), conditional),
    );
  }
}

function table(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The 1-based line of the first occurrence of `needle` in `text` (1 when absent). */
function lineOf(text: string, needle: string): number {
  const at = text.indexOf(needle);
  return at < 0 ? 1 : text.slice(0, at).split("\n").length;
}

/** The 1-based line where TOML key `key` is assigned (1 when not found). */
function keyLine(text: string, key: string): number {
  const lines = text.split("\n");
  const index = lines.findIndex((line) => {
    const match = /^\s*["']?([^"'=\s]+)["']?\s*=/.exec(line);
    return match?.[1] === key;
  });
  return index + 1 || 1;
}

/** An unresolved finding on an absolute file, before the scan makes it root-relative. */
export type DeclaredFinding = UnresolvedEntry & { file: string };

/**
 * The installed packages the declarations select (id → declared only under a marker or as
 * optional) and the findings: a declared distribution that is not installed (unless optional),
 * a `-r` file that does not exist.
 */
export function selectDeclared(
  read: RequirementsRead,
  env: CondaPrefix,
): { declared: Map<string, boolean>; findings: DeclaredFinding[] } {
  const declared = new Map<string, boolean>();
  const findings: DeclaredFinding[] = read.missing.map((missing) => ({
    specifier: missing.target,
    file: missing.file,
    line: missing.line,
    reason: "file-not-found",
    message: `requirements file ${missing.target} (named by -r) does not exist`,
  }));
  for (const req of read.requirements) {
    const id = env.distributions.get(req.key);
    if (id !== undefined) {
      declared.set(id, req.optional && declared.get(id) !== false);
    } else if (!req.optional) {
      findings.push({
        specifier: req.name,
        file: req.file,
        line: req.line,
        reason: "not-installed",
        message: `${req.name} is declared but not installed in ${env.prefix}`,
      });
    }
  }
  return { declared, findings };
}
