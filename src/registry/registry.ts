// The one interface every bundle registry backend implements (local directory, OCI distribution).

import type { Digest, OnEvent } from "../core/light.js";

/** What a registry knows about the bundle published for an input digest. */
export interface RegistryEntry {
  /** sha256 of the bundle's bytes. */
  digest: Digest;
  size: number;
  /**
   * What the bundle is found under: the api's bundle key (the manifest's input digest plus the
   * build options that change bytes). The manifest's own input digest travels in `meta.inputDigest`.
   */
  inputDigest: Digest;
  /**
   * Opaque string pairs the publisher attached (for OCI: manifest annotations). The api stores
   * the bundle format and builder here and decides whether an entry is usable.
   */
  meta: Record<string, string>;
  /**
   * A layered bundle's layers (bundle format 3), in assembly order: each its own blob, so a
   * registry stores, moves and checks each once whatever number of bundles list it. `digest`
   * and `size` are then the bundle index's, which names the same layers. Absent for a
   * single-blob bundle.
   */
  layers?: RegistryLayer[] | undefined;
}

/** One layer of a layered bundle, as a registry stores it: a blob of its own. */
export interface RegistryLayer {
  /** sha256 of the layer's `.tar.zst` bytes. */
  digest: Digest;
  size: number;
  /** What it holds (`runtime`, `packages`, `app`): kept with it, never interpreted here. */
  role: string;
}

/** What {@link Registry.push} is given: an entry whose layers (if any) name their files. */
export type PushEntry = Omit<RegistryEntry, "layers"> & {
  layers?: Array<RegistryLayer & { file: string }> | undefined;
};

/** What a push moved: blobs sent, and blobs the registry already held (not sent again). */
export interface PushReport {
  /** Digests uploaded (or, for a directory registry, stored), bundle blob last. */
  sent: Digest[];
  /** Digests the registry already held. */
  skipped: Digest[];
  /** Bytes of the blobs sent. */
  bytes: number;
}

/** Options every network-facing call accepts. */
export interface TransferOptions {
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * A bundle registry. Implementations never leave a partial blob or a tag/index entry pointing at a
 * missing blob; every byte they hand back has been verified against its digest.
 */
export interface Registry {
  /** The registry's URL with any credentials removed, safe to print. */
  readonly displayUrl: string;
  /** The entry published for an input digest, or null. One request for OCI (a tag lookup). */
  lookup(
    inputDigest: Digest,
    options?: TransferOptions,
  ): Promise<RegistryEntry | null>;
  /** True when the blob with this digest is stored. */
  has(digest: Digest, options?: TransferOptions): Promise<boolean>;
  /**
   * Publishes a bundle file: its layers' blobs and its own (each verified against its digest,
   * each skipped when the registry already holds it), then the entry that names it by input
   * digest, so an interrupted push never leaves a dangling entry. Two pushes of the same bundle
   * at once both succeed.
   */
  push(
    file: string,
    entry: PushEntry,
    options?: TransferOptions,
  ): Promise<PushReport>;
  /**
   * Downloads a blob to `destFile` (written to a temp file beside it, verified, then renamed).
   * A digest mismatch is an IntegrityError (ENVPACK_INTEGRITY_DIGEST_MISMATCH) and leaves nothing.
   */
  pull(
    digest: Digest,
    destFile: string,
    options?: TransferOptions,
  ): Promise<void>;
}
