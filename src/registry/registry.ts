// The one interface every bundle registry backend implements (local directory, OCI distribution).

import type { Digest, OnEvent } from "../core/index.js";

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
   * Publishes a bundle file: the blob first (verified against `entry.digest`), then the entry
   * that names it by input digest, so an interrupted push never leaves a dangling entry. Two
   * pushes of the same bundle at once both succeed.
   */
  push(
    file: string,
    entry: RegistryEntry,
    options?: TransferOptions,
  ): Promise<void>;
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
