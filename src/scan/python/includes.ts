// Python includes: distribution names and globs of project files no analysis sees, resolved
// against the prefix and the project directory.

import { realpath } from "node:fs/promises";
import { InputError, normaliseName } from "../../core/index.js";
import type { CondaPrefix } from "../conda/index.js";
import { globPattern, listFiles } from "../file-globs.js";
import { toPosixRelative } from "../scan-result.js";

/**
 * What `includes` name: an installed distribution's name (PEP 503-normalised) its package id, a
 * glob (relative to `project`) the real paths of the project files it matches (`__pycache__`
 * and a prefix inside the project are not walked).
 * @throws InputError ENVPACK_INPUT_INCLUDE_MISSING naming an include that matches nothing
 */
export async function resolveIncludes(
  project: string,
  includes: string[],
  env: CondaPrefix,
): Promise<{ packages: string[]; files: string[] }> {
  const packages: string[] = [];
  const files: string[] = [];
  let listed: string[] | undefined;
  for (const include of includes) {
    const id = env.distributions.get(normaliseName(include));
    if (id !== undefined) {
      packages.push(id);
      continue;
    }
    listed ??= await listFiles(
      project,
      Infinity,
      new Set([
        "node_modules",
        ".git",
        "__pycache__",
        await realpath(env.prefix),
      ]),
    );
    const pattern = globPattern(include.replace(/^\.\//, ""));
    const matched = listed.filter((f) =>
      pattern.test(toPosixRelative(project, f)),
    );
    if (matched.length === 0)
      throw new InputError(
        "ENVPACK_INPUT_INCLUDE_MISSING",
        `include ${JSON.stringify(include)} names no installed distribution and no file under ${project}`,
        {
          hint: "Install the package, or fix the glob (relative to the directory of the app's pyproject.toml or requirements.txt).",
          details: { include, project },
        },
      );
    for (const file of matched) files.push(await realpath(file));
  }
  return { packages, files };
}
