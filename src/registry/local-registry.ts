// A registry in a local directory (a shared file system, a CI cache directory): the same layout
// as the build cache, so one can serve as the other.

import {
  IntegrityError,
  hashFile,
  isDigest,
  writeAtomic,
  type Digest,
} from "../core/light.js";
import { LocalStore, linkOrCopy } from "./local-store.js";
import { emptyPushReport, pushBlob } from "./push-report.js";
import type {
  PushEntry,
  PushReport,
  Registry,
  RegistryEntry,
  TransferOptions,
} from "./registry.js";

/** A {@link LocalStore} seen as a registry. */
export class LocalRegistry implements Registry {
  readonly displayUrl: string;
  /** The directory: a store that a `cache gc --cache-dir` of it may collect. */
  readonly root: string;
  readonly #store: LocalStore;

  constructor(root: string) {
    this.#store = new LocalStore(root);
    this.displayUrl = root;
    this.root = root;
  }

  async lookup(inputDigest: Digest): Promise<RegistryEntry | null> {
    const record = await this.#store.lookup(inputDigest);
    if (record === null) return null;
    for (const digest of [
      ...(record.layers ?? []).map((l) => l.digest),
      record.digest,
    ])
      if (!(await this.#store.has(digest))) return null;
    const meta: Record<string, string> = {};
    for (const [key, value] of Object.entries(record.meta ?? {}))
      if (typeof value === "string") meta[key] = value;
    return {
      digest: record.digest,
      size: record.size,
      inputDigest,
      meta,
      ...(record.layers === undefined ? {} : { layers: record.layers }),
    };
  }

  has(digest: Digest): Promise<boolean> {
    return this.#store.has(digest);
  }

  async push(file: string, entry: PushEntry): Promise<PushReport> {
    const report = emptyPushReport();
    // Layers first, the bundle's blob next, the record last: no record names a missing blob.
    for (const layer of entry.layers ?? [])
      await this.#ensure(layer.file, layer, report);
    await this.#ensure(file, entry, report);
    const source = entry.meta["inputDigest"];
    await this.#store.record({
      key: entry.inputDigest,
      inputDigest:
        source !== undefined && isDigest(source) ? source : entry.inputDigest,
      digest: entry.digest,
      size: entry.size,
      usedAt: Date.now(),
      meta: entry.meta,
      ...(entry.layers === undefined
        ? {}
        : {
            layers: entry.layers.map(({ digest, size, role }) => ({
              digest,
              size,
              role,
            })),
          }),
    });
    return report;
  }

  /** A blob stored from a file (hashed and verified) unless one of its size is already there. */
  async #ensure(
    file: string,
    blob: { digest: Digest; size: number },
    report: PushReport,
  ): Promise<void> {
    await pushBlob(report, blob.digest, {
      isStored: async () =>
        (await this.#store.sizeOf(blob.digest)) === blob.size,
      send: async () => (await this.#store.putFile(file, blob.digest)).size,
    });
  }

  async pull(
    digest: Digest,
    destFile: string,
    options: TransferOptions = {},
  ): Promise<void> {
    options.signal?.throwIfAborted();
    await writeAtomic(destFile, async (temp) => {
      await linkOrCopy(this.#store.blobPath(digest), temp);
      // The bytes kept are verified, whichever way they came.
      const actual = await hashFile(temp);
      if (actual.digest !== digest)
        throw new IntegrityError(
          "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
          `the registry ${this.displayUrl} holds bytes hashing to ${actual.digest} for ${digest}`,
          {
            hint: "Remove the damaged blob (envpack cache rm DIGEST --cache-dir REGISTRY_DIR) and push it again.",
            details: { expected: digest, actual: actual.digest },
          },
        );
      options.onEvent?.({
        type: "registry:transfer",
        direction: "pull",
        digest,
        bytes: actual.size,
        total: actual.size,
      });
    });
  }
}
