// Turns a node manifest into the entries of a Node bundle: the node binary, launchers, the app's
// files and exactly the packages of the manifest's closure, at the same relative paths.

import { readdirSync, readlinkSync, realpathSync } from "node:fs";
import { dirname, join, posix, relative, resolve, sep } from "node:path";
import {
  InputError,
  type Manifest,
  type WarnEvent,
} from "../../src/core/light.js";
import type { BundleEntry, WriteBundleOptions } from "../write-bundle.js";
import { appLauncherEntry, metaEntries } from "../bundle-meta.js";
import type { LayerRole } from "../layers/bundle-index.js";

/** Where the app and its node_modules live inside a Node bundle. */
export const APP_DIR = "app";

/** Options of {@link planNodeBundle}. */
export interface NodeBundlePlan {
  manifest: Manifest;
  /** Absolute path of the node executable the bundle carries; needed when the runtime is planned. */
  nodeBinary?: string | undefined;
  /**
   * App files whose bundled bytes differ from the source (compiled TypeScript), by root-relative
   * source path; a promise is awaited once the packages are listed (compile meanwhile).
   */
  compiled?:
    | ReadonlyMap<string, { path: string; data: Uint8Array }>
    | Promise<ReadonlyMap<string, { path: string; data: Uint8Array }>>;
  onWarn?: (warning: WarnEvent) => void;
  /**
   * The layers to plan (default: all): a build that has the others cached skips their work
   * (walking the package directories, awaiting `compiled`).
   */
  roles?: ReadonlySet<LayerRole> | undefined;
  /**
   * A package directory's entries as the caller walked them already (nested `node_modules`
   * excluded), instead of listing the directory again; a package it has no walk of is listed.
   */
  listPackage?:
    ((dir: string) => readonly ListedEntry[] | undefined) | undefined;
}

/** An entry of a package directory, relative to it (`/`-separated), by its kind (lstat's). */
export interface ListedEntry {
  path: string;
  type: "file" | "directory" | "symlink" | "other";
}

/**
 * A Node bundle's leading entries (see {@link WriteBundleOptions.leading}): its node binary, the
 * bulk of its bytes, known before the app is scanned.
 */
export function nodeRuntimeEntries(nodeBinary: string): BundleEntry[] {
  return [
    {
      path: "bin/node",
      type: "file",
      // Synchronous: a caller starts packing these while a busy scan holds the event loop.
      source: realpathSync(nodeBinary),
      executable: true,
      layer: "runtime",
    },
  ];
}

/**
 * The rest of a Node bundle's runtime layer, after its leading entries: the launcher (the same
 * for every node binary, so a build for this machine's node packs the whole layer before its scan
 * is done).
 */
export function nodeLauncherEntries(): BundleEntry[] {
  return [
    {
      path: "bin/envpack-node",
      type: "file",
      data: Buffer.from(NODE_LAUNCHER),
      executable: true,
      layer: "runtime",
    },
  ];
}

/**
 * Lists a Node bundle's entries: `leading` (the node binary, packed first) and the rest. Layout: `bin/node`, `bin/envpack-node` (runs the bundled node
 * with NODE_PATH and NODE_OPTIONS cleared), `bin/envpack-app` (runs the first entry),
 * `app/<root-relative paths>` for the app's files and each package directory (nested
 * `node_modules` excluded: those packages are entries of their own), the symlinks through which
 * packages were found, `.envpack/manifest.json` and `.envpack/bundle.json`.
 * @throws InputError ENVPACK_INPUT_MANIFEST_INVALID when the manifest is not a node manifest
 */
export async function planNodeBundle(
  plan: NodeBundlePlan,
): Promise<{ leading: BundleEntry[]; entries: BundleEntry[] }> {
  const { manifest } = plan;
  if (manifest.kind !== "node" || manifest.runtime.name !== "node") {
    throw new InputError(
      "ENVPACK_INPUT_MANIFEST_INVALID",
      `a ${manifest.kind} manifest cannot make a Node bundle`,
      {
        hint: "Scan JS/TS entries for a Node bundle.",
      },
    );
  }
  const wants = (role: LayerRole) => plan.roles?.has(role) ?? true;
  if (wants("runtime") && plan.nodeBinary === undefined)
    throw new Error("planNodeBundle: the runtime needs nodeBinary");
  const leading =
    wants("runtime") && plan.nodeBinary !== undefined
      ? nodeRuntimeEntries(plan.nodeBinary)
      : [];
  const entries: BundleEntry[] = wants("runtime") ? nodeLauncherEntries() : [];
  for (const pkg of wants("packages") ? manifest.packages : []) {
    const dir = join(manifest.root, ...pkg.path.split("/"));
    const bundleDir = posix.join(APP_DIR, pkg.path);
    const listed = plan.listPackage?.(dir);
    entries.push(
      ...(listed === undefined
        ? packageEntries(dir, bundleDir, plan.onWarn)
        : listedEntries(dir, bundleDir, listed, plan.onWarn)),
    );
    for (const link of pkg.links ?? []) {
      const target = posix.relative(posix.dirname(link), pkg.path);
      entries.push({
        path: posix.join(APP_DIR, link),
        type: "symlink",
        linkTarget: target,
        layer: "packages",
      });
    }
  }
  if (!wants("app")) return { leading, entries };
  const compiled =
    (await plan.compiled) ??
    new Map<string, { path: string; data: Uint8Array }>();
  const appPath = (rel: string) =>
    posix.join(APP_DIR, compiled.get(rel)?.path ?? rel);
  for (const file of manifest.files) {
    const bundled = compiled.get(file.path);
    entries.push(
      bundled
        ? {
            path: posix.join(APP_DIR, bundled.path),
            type: "file",
            data: bundled.data,
          }
        : {
            path: posix.join(APP_DIR, file.path),
            type: "file",
            source: join(manifest.root, ...file.path.split("/")),
          },
    );
  }
  const entryPaths = manifest.entries.map(appPath);
  entries.push(appLauncherEntry("node", entryPaths[0] ?? ""));
  entries.push(...metaEntries(manifest, entryPaths));
  return { leading, entries };
}

/**
 * Every file, directory and in-package symlink of a package directory, without nested
 * node_modules. Synchronous: thousands of small directory reads from the page cache, each an
 * awaited thread-pool round trip otherwise, while the packing worker waits for the list.
 */
function packageEntries(
  dir: string,
  bundleDir: string,
  onWarn: ((warning: WarnEvent) => void) | undefined,
): BundleEntry[] {
  const out: BundleEntry[] = [
    { path: bundleDir, type: "directory", layer: "packages" },
  ];
  const walk = (current: string, rel: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      const bundlePath = posix.join(bundleDir, rel, entry.name);
      if (entry.isDirectory()) {
        if (entry.name === "node_modules") continue;
        out.push({ path: bundlePath, type: "directory", layer: "packages" });
        walk(path, posix.join(rel, entry.name));
      } else if (entry.isFile()) {
        // The writer reads the execute bit from the same stat it takes for the size.
        out.push({
          path: bundlePath,
          type: "file",
          source: path,
          layer: "packages",
        });
      } else if (entry.isSymbolicLink()) {
        const link = linkEntry(path, bundlePath, { dir, bundleDir, onWarn });
        if (link !== undefined) out.push(link);
      }
    }
  };
  walk(dir, "");
  return out;
}

/** {@link packageEntries} of a package directory from a listing of it (no directory read). */
function listedEntries(
  dir: string,
  bundleDir: string,
  listed: readonly ListedEntry[],
  onWarn: ((warning: WarnEvent) => void) | undefined,
): BundleEntry[] {
  const out: BundleEntry[] = [
    { path: bundleDir, type: "directory", layer: "packages" },
  ];
  // Concatenated, not path.join: `dir` is absolute and normalised, a listed path is relative with
  // no `.`, `..` or empty segment, and joining thousands of them cost more than the rest of the plan.
  const base = dir.endsWith(sep) ? dir : `${dir}${sep}`;
  for (const entry of listed) {
    const path = `${base}${entry.path}`;
    const bundlePath = `${bundleDir}/${entry.path}`;
    if (entry.type === "directory")
      out.push({ path: bundlePath, type: "directory", layer: "packages" });
    else if (entry.type === "file")
      out.push({
        path: bundlePath,
        type: "file",
        source: path,
        layer: "packages",
      });
    else if (entry.type === "symlink") {
      const link = linkEntry(path, bundlePath, { dir, bundleDir, onWarn });
      if (link !== undefined) out.push(link);
    }
  }
  return out;
}

/** A symlink inside a package as an entry; one leading outside it is skipped with a warning. */
function linkEntry(
  path: string,
  bundlePath: string,
  pkg: {
    dir: string;
    bundleDir: string;
    onWarn: ((warning: WarnEvent) => void) | undefined;
  },
): BundleEntry | undefined {
  const { dir, bundleDir, onWarn } = pkg;
  const target = readlinkSync(path);
  const resolved = resolve(dirname(path), target);
  if (
    !target.startsWith("/") &&
    (resolved === dir || resolved.startsWith(dir + sep))
  )
    return {
      path: bundlePath,
      type: "symlink",
      linkTarget: target,
      layer: "packages",
    };
  onWarn?.({
    type: "warn",
    code: "ENVPACK_WARN_LINK_SKIPPED",
    message: `${relative(dir, path)} in ${bundleDir} links outside its package (${target}); not bundled`,
  });
  return undefined;
}

const NODE_LAUNCHER = `#!/bin/sh
# Runs the bundled node; module resolution stays inside the bundle (no NODE_PATH, no preloads).
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
unset NODE_PATH NODE_OPTIONS
exec "$here/node" "$@"
`;
