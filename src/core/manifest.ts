// The dependency manifest: its versioned schema and its validation when read from disk.

import type { z } from "zod";
import { InputError } from "./errors.js";
import { isSafeRelativePath } from "./safe-path.js";
import { lazyObject, once, zod, type Zod } from "./zod.js";
import { MANIFEST_SCHEMA_VERSION, computeInputDigest } from "./input-digest.js";

// The schema version and the input digest live apart from the schema: a scan seals its manifest
// without loading zod.
export { MANIFEST_SCHEMA_VERSION, computeInputDigest } from "./input-digest.js";

/** The schemas, built with zod once it is loaded (see {@link manifestSchemas}). */
function buildSchemas(z: Zod) {
  const nodeRuntime = z.object({
    name: z.literal("node"),
    /** Node version without the leading `v`, e.g. `20.20.2`. */
    version: z.string(),
    /** `<os>-<arch>`, e.g. `linux-x64`, as in Node's release names. */
    platform: z.string(),
    /** C library on Linux: `glibc` or `musl`; absent elsewhere. */
    libc: z.enum(["glibc", "musl"]).optional(),
  });

  const pythonRuntime = z.object({
    name: z.literal("python"),
    /** Full interpreter version from the prefix's python record, e.g. `3.11.7`. */
    version: z.string(),
    implementation: z.string(),
    /** Conda subdir of the prefix, e.g. `linux-64`. */
    platform: z.string(),
  });

  const fileProblem = z.object({
    reason: z.enum(["syntax-error", "binary", "too-large", "unreadable"]),
    message: z.string(),
    line: z.number().int().optional(),
    column: z.number().int().optional(),
  });

  const appFile = z.object({
    /** POSIX path relative to the manifest root. */
    path: z.string(),
    sha256: z.string(),
    size: z.number().int().nonnegative(),
    role: z.enum(["entry", "module", "json", "native", "asset"]),
    /**
     * How a file no import reaches got here: named through a path the code builds from its own
     * location (`asset`), by an include, read during a traced run, or the Python project's file
     * declaring its dependencies (`declared`: pyproject.toml, requirements*.txt). Absent for
     * imported files.
     */
    reason: z.enum(["asset", "included", "traced", "declared"]).optional(),
    /** Set when the file could not be analysed; it is still listed and packed. */
    problem: fileProblem.optional(),
  });

  const packageEntry = z.object({
    /** Unique within the manifest: the install path for npm, `conda:<name>` / `pip:<name>` for Python. */
    id: z.string(),
    name: z.string(),
    version: z.string(),
    manager: z.enum(["npm", "conda", "pip"]),
    /** npm: package directory relative to the root; conda: the conda-meta record; pip: the dist-info directory (both relative to the prefix). */
    path: z.string(),
    /** `sha512-…` from a lockfile, `sha256:…` or `md5:…` from conda-meta or a tree/RECORD hash; null when nothing vouches for the content. */
    integrity: z.string().nullable(),
    integritySource: z.enum([
      "lockfile",
      "tree",
      "conda-meta",
      "record",
      "none",
    ]),
    /** Ids of packages of this manifest that this one needs at run time. */
    dependencies: z.array(z.string()),
    /**
     * Why the package is here: imported by the app, needed by another package, the interpreter
     * itself, declared by the app (package.json `dependencies`, requirements) though no import
     * reaches it, named by an include, or loaded during a traced run.
     */
    reason: z.enum([
      "import",
      "dependency",
      "interpreter",
      "declared",
      "included",
      "traced",
    ]),
    /** Needed only through optional imports or optional dependencies. */
    optional: z.boolean().optional(),
    /** A local package reached through a symlink (npm/pnpm workspaces, `file:` links). */
    link: z.boolean().optional(),
    /** Symlinks (root-relative) through which Node finds this package, e.g. pnpm's `node_modules/<name>`. */
    links: z.array(z.string()).optional(),
    /** npm `os` / `cpu` / `libc` restrictions, for per-platform native packages. */
    os: z.array(z.string()).optional(),
    cpu: z.array(z.string()).optional(),
    libc: z.array(z.string()).optional(),
    /** Ships or builds a native addon (`.node`). */
    native: z.boolean().optional(),
    /** Conda build string and channel. */
    build: z.string().optional(),
    channel: z.string().optional(),
  });

  const importKind = z.enum([
    "import",
    "export",
    "dynamic-import",
    "require",
    "require-resolve",
    "python-import",
    "python-dynamic",
  ]);

  const importRecord = z.object({
    specifier: z.string(),
    /** The importing file, relative to the root. */
    file: z.string(),
    line: z.number().int(),
    kind: importKind,
    /** What it resolved to: `builtin`, `file:<path>`, `package:<id>`, or `unresolved`. */
    resolved: z.string(),
    /** The file it resolved to, relative to the root (for packages: the file the export conditions chose). */
    target: z.string().optional(),
    /** Inside `try/except ImportError` or a JS `try` block: failure is tolerated at run time. */
    optional: z.boolean().optional(),
  });

  const unresolvedEntry = z.object({
    specifier: z.string(),
    file: z.string(),
    line: z.number().int(),
    column: z.number().int().optional(),
    reason: z.enum([
      "not-installed",
      "dynamic-expression",
      "exports-mismatch",
      "file-not-found",
      "local-project",
      "unsupported",
    ]),
    message: z.string(),
    optional: z.boolean().optional(),
    /** Set when the import is inside an installed package rather than the app. */
    package: z.string().optional(),
    /**
     * Set by a traced scan when the run imported modules at this site (a computed name): the
     * absolute module names it loaded there. The finding is resolved by the trace; `--strict`
     * passes it.
     */
    resolvedByTrace: z.array(z.string()).optional(),
  });

  const manifestSchema = z.object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    kind: z.enum(["node", "conda"]),
    generator: z.object({ name: z.literal("envpack"), version: z.string() }),
    runtime: z.discriminatedUnion("name", [nodeRuntime, pythonRuntime]),
    /** Absolute directory the relative paths are under. Informational: not part of the input digest. */
    root: z.string(),
    /** The Conda prefix of a conda manifest (absolute, informational). */
    env: z.object({ prefix: z.string(), sitePackages: z.string() }).optional(),
    entries: z.array(z.string()),
    files: z.array(appFile),
    packages: z.array(packageEntry),
    imports: z.array(importRecord),
    unresolved: z.array(unresolvedEntry),
    /**
     * Set by a traced scan: what the analysis and the declarations ship that the run never loaded
     * (root-relative app files and package ids); what the run loaded that they missed has reason
     * `traced`. Informational: not part of the input digest.
     */
    trace: z
      .object({
        notLoaded: z.object({
          files: z.array(z.string()),
          packages: z.array(z.string()),
        }),
      })
      .optional(),
    inputDigest: z.string(),
  });
  return {
    manifestSchema,
    nodeRuntime,
    pythonRuntime,
    appFile,
    fileProblem,
    packageEntry,
    importKind,
    importRecord,
    unresolvedEntry,
  };
}

type Schemas = ReturnType<typeof buildSchemas>;

/** The manifest's schemas, built on first use: importing this module does not load zod. */
const manifestSchemas = once(() => buildSchemas(zod()));

/** The manifest's schema (zod), built on first use of any of its properties. */
export const manifestSchema: Schemas["manifestSchema"] = lazyObject(
  () => manifestSchemas().manifestSchema,
);

export type Manifest = z.infer<Schemas["manifestSchema"]>;
export type NodeRuntime = z.infer<Schemas["nodeRuntime"]>;
export type PythonRuntime = z.infer<Schemas["pythonRuntime"]>;
export type AppFile = z.infer<Schemas["appFile"]>;
export type FileProblem = z.infer<Schemas["fileProblem"]>;
export type PackageEntry = z.infer<Schemas["packageEntry"]>;
export type ImportKind = z.infer<Schemas["importKind"]>;
export type ImportRecord = z.infer<Schemas["importRecord"]>;
export type UnresolvedEntry = z.infer<Schemas["unresolvedEntry"]>;
export type UnresolvedReason = UnresolvedEntry["reason"];

/** Validates a manifest read from disk or the network. */
export function parseManifest(json: unknown, source: string): Manifest {
  const parsed = manifestSchemas().manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `${source} is not an envpack manifest: ${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid"}`,
      {
        hint: "Regenerate it with `envpack scan ENTRY -o FILE`.",
        details: { source },
      },
    );
  }
  const escaping = unsafePaths(parsed.data)[0];
  if (escaping !== undefined) {
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `${source}: ${escaping.field} ${JSON.stringify(escaping.path)} is not a relative path inside the ${escaping.base}`,
      {
        hint: "Paths in a manifest are relative, without `..`; regenerate it with `envpack scan`.",
        details: { source, field: escaping.field, path: escaping.path },
      },
    );
  }
  const expected = computeInputDigest(parsed.data);
  if (parsed.data.inputDigest !== expected) {
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `${source}: inputDigest ${parsed.data.inputDigest} does not match its contents (${expected})`,
      {
        hint: "The manifest was edited by hand; regenerate it with `envpack scan`.",
      },
    );
  }
  return parsed.data;
}

/**
 * The manifest's relative paths that could reach outside its root (or the Conda prefix): absolute,
 * with a `..` segment, a NUL or a backslash. Checked before anything is read through them.
 */
function unsafePaths(
  manifest: Manifest,
): Array<{ field: string; path: string; base: string }> {
  const found: Array<{ field: string; path: string; base: string }> = [];
  const check = (field: string, path: string, base: string) => {
    if (!isSafeRelativePath(path)) found.push({ field, path, base });
  };
  manifest.entries.forEach((e, i) => check(`entries.${i}`, e, "root"));
  manifest.files.forEach((f, i) => check(`files.${i}.path`, f.path, "root"));
  const packageBase = manifest.kind === "conda" ? "prefix" : "root";
  manifest.packages.forEach((p, i) => {
    check(`packages.${i}.path`, p.path, packageBase);
    p.links?.forEach((l, j) =>
      check(`packages.${i}.links.${j}`, l, packageBase),
    );
  });
  return found;
}
