// The manifest a build starts from: read from `--manifest` or scanned, checked, then retargeted
// for `--node`/`--platform`.

import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  InputError,
  UsageError,
  isNotFound,
  parseManifest,
  type Manifest,
  type OnEvent,
} from "../core/index.js";
import type { PackageTrees } from "../scan/light.js";
import { checkNodeTarget } from "../../packer/index.js";
import type { BuildWrites } from "./build-writes.js";
import { markEditedPackages } from "./package-edits.js";
import { retarget } from "./retarget.js";
import {
  scanWith,
  syntaxError,
  type ScanOptions,
  type ScanReaders,
} from "./scan-app.js";

/** Options of {@link loadManifest}: the build's inputs. */
export interface LoadManifestOptions {
  entries?: string[] | undefined;
  manifest?: string | undefined;
  env?: string | undefined;
  cacheDir: string;
  node?: string | undefined;
  platform?: string | undefined;
  /** See {@link ScanOptions.onlyImported}. */
  onlyImported?: boolean | undefined;
  /** See {@link ScanOptions.trace}. */
  trace?: string[] | undefined;
  /** See {@link ScanOptions.include}. */
  include?: string[] | undefined;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * What a build reads its inputs with: the Conda prefix reader it shares with its packer, the
 * remembered package scans and the package tree walks it shares with its fingerprint.
 */
export interface ManifestReaders extends ScanReaders {
  packageTrees?: PackageTrees | undefined;
  /** The build's side writes: the remembered package scans and the package-edit records. */
  writes: BuildWrites;
}

/**
 * The manifest to build. `parsePackages: false` is the quick scan (package files not read).
 * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID, a syntax error in an app file, scan's
 *   errors; UsageError ENVPACK_USAGE_BAD_ARGUMENT for `--node`/`--platform` on a Conda app
 */
export async function loadManifest(
  options: LoadManifestOptions & ManifestReaders,
  cwd: string,
  parsePackages: boolean,
): Promise<Manifest> {
  const scanned = await readOrScan(options, cwd, parsePackages);
  const broken = syntaxError(scanned);
  if (broken !== undefined) throw broken;
  const manifest = await markEditedPackages(scanned, {
    cacheDir: options.cacheDir,
    trees: options.packageTrees,
    writes: options.writes,
  });
  if (options.node === undefined && options.platform === undefined)
    return manifest;
  if (manifest.runtime.name !== "node") {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      "--node and --platform apply to Node apps only",
      {
        hint: "A Conda bundle carries the environment's own interpreter.",
      },
    );
  }
  const platform = options.platform ?? manifest.runtime.platform;
  const version = checkNodeTarget(
    options.node ?? manifest.runtime.version,
    platform,
  );
  return retarget(manifest, { version, platform });
}

async function readOrScan(
  options: LoadManifestOptions & ManifestReaders,
  cwd: string,
  parsePackages: boolean,
): Promise<Manifest> {
  if (options.manifest !== undefined) {
    const path = resolve(cwd, options.manifest);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw new InputError(
        "ENVPACK_INPUT_MANIFEST_INVALID",
        `manifest not found: ${path}`,
        {
          hint: "Write one with `envpack scan ENTRY -o FILE`.",
          cause: error,
        },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new InputError(
        "ENVPACK_INPUT_MANIFEST_INVALID",
        `${path} is not JSON: ${(error as Error).message}`,
        {
          hint: "Write it with `envpack scan ENTRY -o FILE`.",
          cause: error,
        },
      );
    }
    return parseManifest(json, path);
  }
  const manifest = await scanWith(
    {
      entries: options.entries ?? [],
      env: options.env,
      cwd,
      parsePackages,
      onlyImported: options.onlyImported,
      trace: options.trace,
      include: options.include,
      onEvent: options.onEvent,
      signal: options.signal,
    },
    options,
  );
  const { packageScans } = options;
  if (packageScans !== undefined)
    options.writes.remember("package scans", () => packageScans.save());
  return manifest;
}
