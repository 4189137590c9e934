// What a Python app declares it needs: pyproject.toml ([project] dependencies, Poetry's main
// dependencies), setup.cfg, setup.py, Pipfile and requirements*.txt files, found at or above the
// entry's directory, selected by their environment markers.

import { readFile, readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  InputError,
  compare,
  isNotFound,
  type UnresolvedEntry,
} from "../../core/light.js";
import type { Parser } from "web-tree-sitter";
import type { CondaPrefix } from "../conda/index.js";
import {
  evaluateMarker,
  markerEnvironment,
  poetryPythonMarker,
} from "./markers.js";
import {
  declared,
  parseRequirement,
  readRequirementsFile,
  type RequirementsRead,
} from "./requirements.js";
import {
  readPipfile,
  readSetupCfg,
  readSetupPy,
  type UnreadSetupPy,
} from "./setup-files.js";

/** Files besides requirements*.txt that make a directory a Python project and declare its needs. */
const PROJECT_FILES = ["pyproject.toml", "setup.cfg", "setup.py", "Pipfile"];

/**
 * Requirements files that are the Python world's devDependencies (test, lint, docs, CI tools):
 * not read, as Node's devDependencies are not. The name between `requirements` and `.txt` decides:
 * a word of it, split at `-`, `_` or `.`, is one of these (case-insensitive), e.g.
 * `requirements-dev.txt`, `requirements_test.txt`, `requirements.docs.txt`, `requirements-ci-lint.txt`;
 * `requirements-prod.txt` or `requirements-gpu.txt` are read. `--include` adds a package a dev
 * file names.
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
 * `pyproject.toml`, `setup.cfg`, `setup.py`, `Pipfile` or a `requirements*.txt` (the search stops
 * at a directory with `.git`). Null when there is none.
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
    if (
      PROJECT_FILES.some((name) => names.includes(name)) ||
      requirementsFiles(names).length > 0
    )
      return dir;
    if (names.includes(".git") || dirname(dir) === dir) return null;
  }
}

/** What a project declares, and the setup.py `install_requires` it could not read statically. */
export type Declarations = RequirementsRead & { unread: UnreadSetupPy[] };

/**
 * What the project directory's pyproject.toml, setup.cfg, setup.py (parsed with `parser`, never
 * run), Pipfile and requirements files declare (none: empty).
 * @throws InputError ENVPACK_INPUT_SYNTAX_ERROR for a pyproject.toml or Pipfile that is not TOML
 */
export async function readDeclarations(
  dir: string,
  parser: Parser,
): Promise<Declarations> {
  const names = await readdir(dir);
  const read: Declarations = {
    requirements: [],
    missing: [],
    files: [],
    unread: [],
  };
  if (names.includes("pyproject.toml"))
    await readPyproject(join(dir, "pyproject.toml"), read);
  if (names.includes("setup.cfg"))
    await readSetupCfg(join(dir, "setup.cfg"), read);
  if (names.includes("setup.py"))
    read.unread.push(
      ...(await readSetupPy(join(dir, "setup.py"), parser, read)),
    );
  if (names.includes("Pipfile")) {
    const path = join(dir, "Pipfile");
    const text = await readFile(path, "utf8");
    readPipfile(path, text, await parseToml(path, text), read);
  }
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
        hint: `Fix ${basename(path)}, or scan with --only-imported to read no declarations.`,
        details: { file: path, line: error.line, column: error.column },
        cause: error,
      },
    );
  }
}

/**
 * Adds `[project] dependencies` (and the requirements files `[tool.setuptools.dynamic]
 * dependencies` names) and Poetry's main group, `[tool.poetry.dependencies]` (less `python`), to
 * `into`. Optional dependencies, PEP 735 `[dependency-groups]` and Poetry's other
 * groups and `dev-dependencies` are not read: they are extras and development tools.
 */
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
          declared(parsed.name, path, lineOf(text, item), {
            marker: parsed.marker,
          }),
        );
    }
  }
  // setuptools reads `dynamic = ["dependencies"]` from the requirements files it names.
  const dynamic = table(
    table(table(table(toml["tool"])?.["setuptools"])?.["dynamic"])?.[
      "dependencies"
    ],
  )?.["file"];
  const named = typeof dynamic === "string" ? [dynamic] : dynamic;
  for (const target of Array.isArray(named) ? named : []) {
    if (typeof target !== "string") continue;
    try {
      await readRequirementsFile(join(dirname(path), target), into);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      into.missing.push({ file: path, line: lineOf(text, target), target });
    }
  }
  const poetry = table(
    table(table(toml["tool"])?.["poetry"])?.["dependencies"],
  );
  for (const [name, spec] of Object.entries(poetry ?? {})) {
    if (name.toLowerCase() === "python") continue;
    // A table may make the dependency optional (an extra) or conditional; a list holds
    // alternatives for different conditions.
    const alternatives = (Array.isArray(spec) ? spec : [spec]).map(table);
    const markers = alternatives.map((alt) => alt && poetryMarker(alt));
    into.requirements.push(
      declared(name, path, keyLine(text, name), {
        optional: alternatives.some((alt) => alt?.["optional"] === true),
        marker: markers.some((m) => m === undefined)
          ? undefined
          : markers.map((m) => `(${m})`).join(" or "),
      }),
    );
  }
}

/** A Poetry dependency table's `python`, `platform` and `markers` as one PEP 508 marker. */
function poetryMarker(spec: Record<string, unknown>): string | undefined {
  const parts: string[] = [];
  const python = spec["python"];
  const platform = spec["platform"];
  const markers = spec["markers"];
  if (typeof python === "string") {
    const marker = poetryPythonMarker(python);
    if (marker !== undefined) parts.push(`(${marker})`);
  }
  if (typeof platform === "string")
    parts.push(`sys_platform == ${JSON.stringify(platform)}`);
  if (typeof markers === "string") parts.push(`(${markers})`);
  return parts.length > 0 ? parts.join(" and ") : undefined;
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
 * The installed packages the declarations select (id → declared only as optional, or under a
 * marker that cannot be decided) and the findings: a declared distribution that is not installed
 * (unless optional), a `-r` or `file:` requirements file that does not exist, a setup.py
 * `install_requires` that is not a literal. Markers are evaluated against `env`'s Python and
 * platform: a requirement whose marker is false is not declared.
 */
export function selectDeclared(
  read: Declarations,
  env: CondaPrefix,
): { declared: Map<string, boolean>; findings: DeclaredFinding[] } {
  const declared = new Map<string, boolean>();
  const target = markerEnvironment(env.python.version, env.platform);
  const findings: DeclaredFinding[] = read.missing.map((missing) => ({
    specifier: missing.target,
    file: missing.file,
    line: missing.line,
    reason: "file-not-found",
    message: `requirements file ${missing.target} (named by -r or file:) does not exist`,
  }));
  for (const unread of read.unread)
    findings.push({
      specifier: unread.text,
      file: unread.file,
      line: unread.line,
      column: unread.column,
      reason: "dynamic-expression",
      message:
        "install_requires is not a literal list; setup.py is never run, so what it declares is not read (name the packages with --include)",
      optional: true,
    });
  for (const req of read.requirements) {
    const holds =
      req.marker === undefined ? true : evaluateMarker(req.marker, target);
    if (holds === false) continue;
    const optional = req.optional || holds === undefined;
    const id = env.distributions.get(req.key);
    if (id !== undefined) {
      declared.set(id, optional && declared.get(id) !== false);
    } else if (!optional) {
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
