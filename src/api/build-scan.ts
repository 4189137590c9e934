// A build's scan: its inputs (one Conda prefix reader shared with the packer, the remembered
// package walks, the package scans it keeps) and, in a rebuild, the scan run on its remembered
// walks taken as holding while the tree-check threads confirm them (tree-speculation.ts).

import { join, resolve } from "node:path";
import type { Manifest, OnEvent } from "../core/light.js";
import { sharedCondaEnvReader, type CondaEnvReader } from "../conda/index.js";
import {
  PackageScans,
  packageScansFile,
  packageTrees as scanTrees,
  type PackageTrees,
} from "../scan/light.js";
import type { RememberedFingerprint } from "./build-fingerprint.js";
import type { BuildWrites } from "./build-writes.js";
import type { LoadManifestOptions } from "./load-manifest.js";
import { speculateTrees } from "./tree-speculation.js";
import { envpackVersion } from "./version.js";

/** What a build's scan reads with (its options and readers), its plan and fingerprint too. */
export type BuildScanInputs<O> = O & {
  readCondaEnv: CondaEnvReader;
  packageTrees: PackageTrees;
  packageScans: PackageScans;
  writes: BuildWrites;
  onPlanned: () => void;
};

/** A build's scan, run quick (no package file read) or full. */
export interface BuildScan<O> {
  /** Its inputs (anew after a refuted speculation). */
  readonly inputs: BuildScanInputs<O>;
  /** The quick scan's manifest: a registry lookup's, whose digest usually equals the full one's. */
  quick(): Promise<Manifest>;
  /** The full scan's manifest, on walks that hold: a refuted speculation scans again. */
  full(): Promise<Manifest>;
}

/**
 * The scan of a build whose fingerprint missed. The scan and the packer read a Conda prefix once,
 * together; the scan, the edited-package check and the fingerprint walk each package directory
 * once. With `speculate` (no registry: its quick scan decides a pull on its own) and walks
 * remembered, the full scan takes them as holding while threads check them.
 */
export function openBuildScan<O extends LoadManifestOptions>(
  options: O,
  context: {
    cwd: string;
    remembered: RememberedFingerprint;
    writes: BuildWrites;
    speculate: boolean;
  },
): BuildScan<O> {
  const { cwd, remembered, writes } = context;
  const readCondaEnv = sharedCondaEnvReader({ cacheDir: options.cacheDir });
  const inputsOf = (
    isUnchanged: RememberedFingerprint["isUnchanged"],
    sideWrites: BuildWrites,
    onEvent: OnEvent | undefined,
  ): BuildScanInputs<O> => {
    const packageTrees = scanTrees(remembered.walks, isUnchanged);
    return {
      ...options,
      onEvent,
      readCondaEnv,
      packageTrees,
      packageScans: new PackageScans(
        packageScansFile(
          join(options.cacheDir, "scan"),
          (options.entries ?? []).map((e) => resolve(cwd, e)),
        ),
        envpackVersion(),
        packageTrees,
      ),
      writes: sideWrites,
      // The side writes start once the layers' entries are with their packers.
      onPlanned: () => writes.start(),
    };
  };
  const speculation =
    context.speculate && remembered.walks.size > 0
      ? speculateTrees(remembered.isUnchanged, writes, options.onEvent)
      : undefined;
  let inputs =
    speculation === undefined
      ? inputsOf(remembered.isUnchanged, writes, options.onEvent)
      : inputsOf(
          speculation.isUnchanged,
          speculation.writes,
          options.onEvent && speculation.onEvent,
        );
  // The scanner loads when first used: after a prepacked prefix has handed its runtime layer over.
  const load = async (full: boolean) =>
    (await import("./load-manifest.js")).loadManifest(inputs, cwd, full);
  const onCheckedWalks = () => {
    inputs = inputsOf(remembered.isUnchanged, writes, options.onEvent);
    return load(true);
  };
  return {
    get inputs() {
      return inputs;
    },
    quick: () => load(false),
    async full() {
      if (speculation === undefined) return load(true);
      let manifest: Manifest;
      try {
        manifest = await load(true);
      } catch (error) {
        if (speculation.confirm()) throw error;
        return onCheckedWalks();
      }
      return speculation.confirm() ? manifest : onCheckedWalks();
    },
  };
}
