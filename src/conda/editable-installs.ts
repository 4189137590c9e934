// Editable installs in a prefix as conda-pack finds them: `.pth` lines naming a directory outside
// the prefix, and dist-infos whose `direct_url.json` says `editable: true`.

import { readFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compare, isNotFound, namesIfPresent } from "../core/light.js";
import type { CondaEnv } from "./conda-env.js";

/** One editable install: the package (or the `.pth` line when no dist-info owns it) and its source. */
export interface EditableInstall {
  name: string;
  source: string;
}

/**
 * The editable installs of a prefix, sorted by name: each site-packages `.pth` line (not a
 * comment or `import`) that resolves outside the prefix, named by the dist-info listing the
 * `.pth`, and each dist-info whose `direct_url.json` has `dir_info.editable: true`.
 */
export async function findEditableInstalls(
  env: CondaEnv,
): Promise<EditableInstall[]> {
  const { prefix, sitePackages } = env;
  const site = join(prefix, sitePackages);
  const found = new Map<string, string>();
  for (const pth of (await namesIfPresent(site))
    .filter((f) => f.endsWith(".pth"))
    .sort(compare)) {
    for (const raw of (readOptional(join(site, pth)) ?? "").split("\n")) {
      const line = raw.trimEnd();
      if (line === "" || line.startsWith("#") || line.startsWith("import"))
        continue;
      const location = resolve(site, line);
      const rel = relative(prefix, location);
      if (rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))) continue;
      const owner = env.distInfos.find((d) =>
        d.files.has(`${sitePackages}/${pth}`),
      );
      found.set(owner?.name ?? line, location);
    }
  }
  for (const dist of env.distInfos) {
    const text = readOptional(join(prefix, dist.path, "direct_url.json"));
    if (text === undefined) continue;
    const info = parseJson(text) as {
      url?: unknown;
      dir_info?: { editable?: unknown };
    } | null;
    if (info?.dir_info?.editable !== true) continue;
    const url = typeof info.url === "string" ? info.url : "";
    found.set(
      dist.name ?? dist.path,
      url.startsWith("file:") ? fileURLToPath(url) : url || dist.path,
    );
  }
  return [...found.keys()]
    .sort(compare)
    .map((name) => ({ name, source: found.get(name) as string }));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

/** A small metadata file's text, or undefined when it does not exist (read synchronously: see readCondaRecord). */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}
