// Reads pip's *.dist-info directories: name, version, RECORD integrity and files, top-level modules,
// requirements and editable installs.

import { readFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import {
  InputError,
  compare,
  isDirectory,
  isNotFound,
  namesIfPresent,
  parseDistInfoMetadata,
  recordLinePath,
  sha256Hex,
} from "../core/index.js";
import { isIdentifier, moduleNameOf, normaliseName } from "./module-names.js";

/** Bounded fan-out for metadata reads. */
const CONCURRENCY = 32;

/** A `*.dist-info` directory in site-packages that no conda record manages (pip-installed). */
export interface DistInfo {
  /** The `Name` of METADATA, else from the directory name; undefined when neither gives one. */
  name: string | undefined;
  /** The `Version` of METADATA, else from the directory name; undefined when neither gives one. */
  version: string | undefined;
  /** PEP 503-normalised name (of `name`, else of the directory name). */
  key: string;
  /** Prefix-relative path of the directory, `lib/pythonX.Y/site-packages/<name>.dist-info`. */
  path: string;
  /** `sha256:` of RECORD, or null without one. */
  integrity: string | null;
  /** Top-level module names it provides (RECORD, top_level.txt, an editable install's sources). */
  modules: string[];
  /** Normalised names from `Requires-Dist` without an `extra` marker. */
  requires: string[];
  /** Prefix-relative files its RECORD lists inside the prefix, plus the directory's own files. */
  files: Set<string>;
  /** The source directory of an editable install. */
  editable?: string;
}

/**
 * The dist-infos of `sitePackages` whose directory name is not in `owned` (those conda records
 * manage), sorted by directory name.
 * @throws InputError ENVPACK_INPUT_ENV_CORRUPT for a `direct_url.json` that is not JSON
 */
export async function readDistInfos(
  prefix: string,
  sitePackages: string,
  owned: ReadonlySet<string>,
): Promise<DistInfo[]> {
  const site = join(prefix, sitePackages);
  const distInfos = (await namesIfPresent(site))
    .filter((e) => e.endsWith(".dist-info") && !owned.has(e))
    .sort(compare);
  return mapLimit(distInfos, (dir) => readDistInfo(site, sitePackages, dir));
}

async function readDistInfo(
  site: string,
  sitePackages: string,
  dir: string,
): Promise<DistInfo> {
  const base = join(site, dir);
  const [metadata, record, topLevel, directUrl] = await Promise.all(
    ["METADATA", "RECORD", "top_level.txt", "direct_url.json"].map((f) =>
      readOptional(join(base, f)),
    ),
  );
  const headers = parseDistInfoMetadata(metadata?.toString("utf8") ?? "");
  const fromDir = /^(.+?)-([^-]+)\.dist-info$/.exec(dir);
  const name = headers.get("name")?.[0] ?? fromDir?.[1];
  const version = headers.get("version")?.[0] ?? fromDir?.[2];

  const modules = new Set<string>();
  const files = new Set<string>();
  const pthFiles: string[] = [];
  for (const line of (record?.toString("utf8") ?? "").split("\n")) {
    const path = recordLinePath(line);
    if (path === "" || path.startsWith("/")) continue;
    const target = posix.normalize(`${sitePackages}/${path}`);
    if (!target.startsWith("../")) files.add(target);
    if (path.startsWith("../")) continue;
    if (!path.includes("/") && path.endsWith(".pth")) pthFiles.push(path);
    if (path.startsWith("__editable__")) continue;
    const module = moduleNameOf(path);
    if (module !== undefined) modules.add(module);
  }
  for (const file of await namesIfPresent(base))
    files.add(`${sitePackages}/${dir}/${file}`);
  for (const line of (topLevel?.toString("utf8") ?? "").split("\n")) {
    const top = line.trim().split("/")[0] ?? "";
    if (isIdentifier(top)) modules.add(top);
  }

  const editable = await editableSource(
    site,
    dir,
    directUrl,
    pthFiles,
    modules,
  );
  const requires = (headers.get("requires-dist") ?? [])
    .filter((req) => !/\bextra\s*==/.test(req.split(";").slice(1).join(";")))
    .map((req) => normaliseName(/^[A-Za-z0-9._-]+/.exec(req.trim())?.[0] ?? ""))
    .filter((n) => n !== "");
  return {
    name,
    version,
    key: normaliseName(name ?? dir),
    path: `${sitePackages}/${dir}`,
    integrity: record ? `sha256:${sha256Hex(record)}` : null,
    modules: [...modules].sort(compare),
    requires,
    files,
    ...(editable === undefined ? {} : { editable }),
  };
}

/**
 * For an editable install (PEP 660 `direct_url.json` with `editable: true`, or a RECORD-listed
 * `__editable__*.pth`), its source directory; the top-level modules found in the `.pth` path
 * entries are added to `modules`. Import hooks in `.pth` files (`import …` lines) are not run.
 */
async function editableSource(
  site: string,
  dir: string,
  directUrl: Buffer | undefined,
  pthFiles: string[],
  modules: Set<string>,
): Promise<string | undefined> {
  let source: string | undefined;
  let isEditable = pthFiles.some((p) => p.startsWith("__editable__"));
  if (directUrl) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(directUrl.toString("utf8"));
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new InputError(
        "ENVPACK_INPUT_ENV_CORRUPT",
        `corrupt ${join(site, dir, "direct_url.json")}: ${error.message}`,
        {
          hint: "Reinstall the package with pip.",
        },
      );
    }
    const info = parsed as { url?: unknown; dir_info?: { editable?: unknown } };
    if (info.dir_info?.editable === true) {
      isEditable = true;
      if (typeof info.url === "string" && info.url.startsWith("file:"))
        source = fileURLToPath(info.url);
    }
  }
  if (!isEditable) return undefined;
  for (const pth of pthFiles) {
    const text = (await readOptional(join(site, pth)))?.toString("utf8") ?? "";
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (
        line === "" ||
        line.startsWith("#") ||
        line.startsWith("import ") ||
        line.startsWith("import\t")
      )
        continue;
      source ??= line;
      for (const child of await namesIfPresent(line)) {
        const module = child.endsWith(".py")
          ? moduleNameOf(child)
          : (await isDirectory(join(line, child)))
            ? moduleNameOf(`${child}/`)
            : undefined;
        if (module !== undefined) modules.add(module);
      }
    }
  }
  return source ?? join(site, dir);
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** `Promise.all(items.map(fn))` with at most `CONCURRENCY` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: T[],
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker),
  );
  return out;
}
