// Where envpack's own files are (runtime/, its workers, package.json), found the same way from the
// source tree under a test runner, from dist/ and from an installed package.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isNotFound } from "./fs-errors.js";

/**
 * The root of envpack's code: this module is `<root>/src/core/own-files.{ts,js}`, where `<root>`
 * is the repository (sources) or `dist/` (compiled), or inside the CLI bundle, whose files are all
 * in `dist/src/cli/`: two levels below the root either way.
 */
const CODE_ROOT = resolve(fileURLToPath(new URL("../../", import.meta.url)));

let packageRoot: string | undefined;
let packageJson: { name: string; version: string } | undefined;

/**
 * The directory of envpack's `package.json`: the code root or the nearest directory above it
 * whose `package.json` is named `envpack`.
 */
export function envpackPackageDir(): string {
  if (packageRoot !== undefined) return packageRoot;
  for (let dir = CODE_ROOT; ; dir = dirname(dir)) {
    const json = readPackageJson(join(dir, "package.json"));
    if (json?.name === "envpack" && typeof json.version === "string") {
      packageJson = { name: json.name, version: json.version };
      return (packageRoot = dir);
    }
    if (dirname(dir) === dir)
      throw new Error(`envpack's package.json not found above ${CODE_ROOT}`);
  }
}

/** envpack's `package.json` (its name and version), read once. */
export function envpackPackageJson(): { name: string; version: string } {
  envpackPackageDir();
  return packageJson as { name: string; version: string };
}

/**
 * A file envpack ships beside its code, by its path in the package: `runtime/envpack-run`,
 * `runtime/module-runner.mjs`, `README.md`. A missing one is a broken install (a plain Error).
 */
export function envpackFile(relative: string): string {
  return existing(join(envpackPackageDir(), relative));
}

/**
 * A module of envpack's code tree by its path from the code root, `packer/pack-worker.mjs`: in
 * `dist/` once built, in the source tree under a test runner (for worker threads and child
 * processes, which load a file rather than import a module).
 */
export function envpackCodeFile(relative: string): string {
  return existing(join(CODE_ROOT, relative));
}

function existing(path: string): string {
  if (!existsSync(path))
    throw new Error(`${path} is missing: envpack's install is incomplete`);
  return path;
}

function readPackageJson(
  path: string,
): { name?: unknown; version?: unknown } | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  return JSON.parse(text) as { name?: unknown; version?: unknown };
}
