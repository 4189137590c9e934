// The key a bundle is cached and published under: its manifest's input digest plus every build
// option that changes the bundle's bytes.

import { canonicalJson, digestOf, type Digest } from "../core/light.js";
import { BUNDLE_FORMAT } from "../../packer/light.js";

/** The zstd level a bundle is written with when none is given (writeBundle's default). */
const DEFAULT_LEVEL = 3;

/** Build options that change a bundle's bytes (threads do not: the writer's output ignores them). */
export interface BundleKeyOptions {
  level?: number | undefined;
  prune?: boolean | undefined;
  engine?: "builtin" | "conda-pack" | undefined;
  /**
   * A Conda bundle packing the whole prefix (not pruned): the prefix's identity
   * (environmentDigest), which its manifest's input digest (what the app imports) does not cover.
   */
  environment?: Digest | undefined;
}

/**
 * sha256 over the input digest, the bundle format (another to find an older format's record),
 * the zstd level, `prune` and the engine (the
 * last two change only Conda bundles; a Node build given them gets a key of its own, harmlessly). The manifest's input digest stays what the scan says; the cache index and the
 * registry (OCI tag `input-<hex of this key>`) are keyed by this, so a bundle built with other
 * byte-changing options is never answered for these. `--node`/`--platform` are in the input
 * digest already (the manifest is retargeted).
 */
export function bundleKey(
  inputDigest: Digest,
  options: BundleKeyOptions = {},
  format: number = BUNDLE_FORMAT,
): Digest {
  return digestOf(
    canonicalJson({
      key: "envpack-bundle-key/1",
      inputDigest,
      format,
      level: options.level ?? DEFAULT_LEVEL,
      prune: options.prune === true,
      engine: options.engine ?? "builtin",
      // Absent unless set, so that other bundles keep their keys.
      environment: options.environment,
    }),
  );
}
