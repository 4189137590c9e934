// PEP 508 environment markers, evaluated against the target environment (the Conda prefix's
// Python and platform), with "cannot tell" as a third answer.

/** Marker variables of the target; a missing one (e.g. `platform_release`) is unknown. */
export type MarkerEnvironment = Readonly<Record<string, string>>;

/** Conda subdir → sys_platform, platform_system, os_name, platform_machine. */
const PLATFORMS: Record<string, [string, string, string, string]> = {
  "linux-64": ["linux", "Linux", "posix", "x86_64"],
  "linux-32": ["linux", "Linux", "posix", "i686"],
  "linux-aarch64": ["linux", "Linux", "posix", "aarch64"],
  "linux-armv7l": ["linux", "Linux", "posix", "armv7l"],
  "linux-ppc64le": ["linux", "Linux", "posix", "ppc64le"],
  "linux-s390x": ["linux", "Linux", "posix", "s390x"],
  "osx-64": ["darwin", "Darwin", "posix", "x86_64"],
  "osx-arm64": ["darwin", "Darwin", "posix", "arm64"],
  "win-64": ["win32", "Windows", "nt", "AMD64"],
  "win-32": ["win32", "Windows", "nt", "x86"],
  "win-arm64": ["win32", "Windows", "nt", "ARM64"],
};

/**
 * The marker variables a CPython `pythonVersion` (e.g. `3.11.7`) on Conda subdir `platform`
 * (e.g. `linux-64`) has. `extra` is empty: an app's own requirements are read without extras.
 * `platform_release` and `platform_version` (the worker's kernel) stay unknown.
 */
export function markerEnvironment(
  pythonVersion: string,
  platform: string,
): MarkerEnvironment {
  const env: Record<string, string> = {
    python_version: pythonVersion.split(".").slice(0, 2).join("."),
    python_full_version: pythonVersion,
    implementation_name: "cpython",
    implementation_version: pythonVersion,
    platform_python_implementation: "CPython",
    extra: "",
  };
  const known = PLATFORMS[platform];
  if (known !== undefined) {
    [
      env["sys_platform"],
      env["platform_system"],
      env["os_name"],
      env["platform_machine"],
    ] = known;
  }
  return env;
}

/** The names PEP 345 and setuptools once used, as PEP 508 maps them. */
const ALIASES: Record<string, string> = {
  "os.name": "os_name",
  "sys.platform": "sys_platform",
  "platform.version": "platform_version",
  "platform.machine": "platform_machine",
  "platform.python_implementation": "platform_python_implementation",
  python_implementation: "platform_python_implementation",
};

const VARIABLES = new Set([
  "python_version",
  "python_full_version",
  "os_name",
  "sys_platform",
  "platform_release",
  "platform_system",
  "platform_version",
  "platform_machine",
  "platform_python_implementation",
  "implementation_name",
  "implementation_version",
  "extra",
  ...Object.keys(ALIASES),
]);

/** Whether `name` is a marker variable (Pipfile takes them as keys of a package's table). */
export function isMarkerVariable(name: string): boolean {
  return VARIABLES.has(name);
}

type Token =
  | { type: "string"; value: string }
  | { type: "variable"; name: string }
  | { type: "op"; value: string }
  | { type: "(" | ")" | "and" | "or" };

const TOKEN =
  /\s*(?:'([^']*)'|"([^"]*)"|(===|==|!=|<=|>=|~=|<|>|\(|\)|not\s+in\b|in\b|and\b|or\b)|([A-Za-z_][A-Za-z0-9_.]*))/y;

function tokenize(text: string): Token[] | undefined {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const match = TOKEN.exec(text);
    if (match === null) return undefined;
    const [, single, double, symbol, word] = match;
    if (single !== undefined || double !== undefined)
      tokens.push({ type: "string", value: single ?? double ?? "" });
    else if (
      symbol === "(" ||
      symbol === ")" ||
      symbol === "and" ||
      symbol === "or"
    )
      tokens.push({ type: symbol });
    else if (symbol !== undefined)
      tokens.push({ type: "op", value: symbol.replace(/\s+/, " ") });
    else if (word !== undefined && VARIABLES.has(word))
      tokens.push({ type: "variable", name: ALIASES[word] ?? word });
    else return undefined;
  }
  return tokens;
}

/** true, false, or undefined: cannot tell (an unknown variable, an order between non-versions). */
type Truth = boolean | undefined;

/**
 * Evaluates a PEP 508 marker (`python_version < "3.8" and sys_platform == "win32"`) against
 * `env`. Undefined when the answer depends on what is unknown, or the text is not a marker.
 */
export function evaluateMarker(text: string, env: MarkerEnvironment): Truth {
  const tokens = tokenize(text);
  if (tokens === undefined || tokens.length === 0) return undefined;
  let at = 0;
  let valid = true;
  const peek = () => tokens[at];
  const orExpr = (): Truth => {
    let value = andExpr();
    while (peek()?.type === "or") {
      at++;
      const right = andExpr();
      value =
        value === true || right === true
          ? true
          : value === undefined || right === undefined
            ? undefined
            : false;
    }
    return value;
  };
  const andExpr = (): Truth => {
    let value = atom();
    while (peek()?.type === "and") {
      at++;
      const right = atom();
      value =
        value === false || right === false
          ? false
          : value === undefined || right === undefined
            ? undefined
            : true;
    }
    return value;
  };
  const atom = (): Truth => {
    const token = tokens[at++];
    if (token?.type === "(") {
      const value = orExpr();
      if (tokens[at++]?.type !== ")") valid = false;
      return value;
    }
    const op = tokens[at++];
    const right = tokens[at++];
    const side = (t: Token | undefined): string | null | undefined => {
      if (t?.type === "string") return t.value;
      if (t?.type === "variable") return env[t.name] ?? null;
      valid = false;
      return undefined;
    };
    const left = side(token);
    const value = side(right);
    if (op?.type !== "op") valid = false;
    if (
      !valid ||
      left === undefined ||
      value === undefined ||
      op?.type !== "op"
    )
      return undefined;
    if (left === null || value === null) return undefined;
    return compareMarker(left, op.value, value);
  };
  const value = orExpr();
  return valid && at === tokens.length ? value : undefined;
}

/** `left op right` as PEP 508 defines it: PEP 440 versions when both sides are, else strings. */
function compareMarker(left: string, op: string, right: string): Truth {
  if (op === "in") return right.includes(left);
  if (op === "not in") return !right.includes(left);
  if (op === "===") return left === right;
  const a = release(left);
  const wildcard = (op === "==" || op === "!=") && right.endsWith(".*");
  const b = release(wildcard ? right.slice(0, -2) : right);
  if (a === undefined || b === undefined) {
    if (op === "==") return left === right;
    if (op === "!=") return left !== right;
    return undefined;
  }
  if (wildcard) {
    const prefix = b.every((part, i) => (a[i] ?? 0) === part);
    return op === "==" ? prefix : !prefix;
  }
  const order = compareReleases(a, b);
  switch (op) {
    case "==":
      return order === 0;
    case "!=":
      return order !== 0;
    case "<":
      return order < 0;
    case "<=":
      return order <= 0;
    case ">":
      return order > 0;
    case ">=":
      return order >= 0;
    case "~=": {
      if (b.length < 2) return undefined;
      const head = b.slice(0, -1);
      return order >= 0 && head.every((part, i) => (a[i] ?? 0) === part);
    }
    default:
      return undefined;
  }
}

/** The release numbers of a plain version (`3.11.7`); undefined for anything else (pre-releases, local). */
function release(text: string): number[] | undefined {
  return /^\d+(?:\.\d+)*$/.test(text.trim())
    ? text.trim().split(".").map(Number)
    : undefined;
}

function compareReleases(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * A Poetry Python constraint (`^3.8`, `~3.9`, `>=3.7,<3.11`, `3.8.*`, `>=3.8 || <3`) as a PEP 508
 * marker on `python_full_version`; undefined for `*` (any). Forms it does not know give a text
 * that is no marker, which evaluates as "cannot tell".
 */
export function poetryPythonMarker(constraint: string): string | undefined {
  const alternatives = constraint
    .split("||")
    .map((alt) => alt.trim())
    .filter((alt) => alt !== "" && alt !== "*");
  if (alternatives.length === 0) return undefined;
  const parts = alternatives.map((alt) => {
    const terms = alt
      .split(/\s*,\s*|\s+(?=[<>=!~^])/)
      .filter((t) => t !== "")
      .flatMap(poetryTerm);
    return `(${terms.join(" and ")})`;
  });
  return parts.join(" or ");
}

function poetryTerm(term: string): string[] {
  const on = (op: string, version: string) =>
    `python_full_version ${op} "${version}"`;
  const match =
    /^(\^|~=|~|===|==|!=|<=|>=|<|>|=)?\s*(\d+(?:\.\d+)*)(\.\*)?$/.exec(term);
  if (match === null) return ["?"];
  const [, op = "", version = "", star] = match;
  const parts = version.split(".").map(Number);
  if (star) return [on(op === "!=" ? "!=" : "==", `${version}.*`)];
  if (op === "^") {
    // The first non-zero part may not change.
    const first = parts.findIndex((p) => p !== 0);
    const keep = first < 0 ? parts.length - 1 : first;
    const upper = parts.slice(0, keep + 1);
    upper[keep] = (upper[keep] ?? 0) + 1;
    return [on(">=", version), on("<", upper.join("."))];
  }
  if (op === "~") {
    const keep = parts.length > 1 ? 1 : 0;
    const upper = parts.slice(0, keep + 1);
    upper[keep] = (upper[keep] ?? 0) + 1;
    return [on(">=", version), on("<", upper.join("."))];
  }
  return [on(op === "" || op === "=" ? "==" : op, version)];
}
