// A content-addressed directory of bundles: blobs by digest plus an index bundle key → bundle
// digest. The build cache and the local registry share this layout.

import { constants, type Stats } from "node:fs";
import {
  copyFile,
  link,
  mkdir,
  opendir,
  readFile,
  readdir,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import {
  isNotFound,
  IntegrityError,
  hashFile,
  isDigest,
  namesIfPresent,
  processRuns,
  tempWriterPid,
  UsageError,
  syncFile,
  writeAtomic,
  type Digest,
} from "../core/light.js";

/** What the index records for one key. */
export interface IndexRecord {
  /**
   * What the record is found under: the api's bundle key (input digest + byte-changing build
   * options). Records written before keys existed lack it and are never found.
   */
  key: Digest;
  /** The manifest's input digest the bundle was built from (informational). */
  inputDigest: Digest;
  digest: Digest;
  size: number;
  /** Unix milliseconds of the last build or pull that used it (for gc). */
  usedAt: number;
  /** Free-form data the caller wants back on a hit (e.g. a stat fingerprint). */
  meta?: Record<string, unknown>;
  /**
   * A layered bundle's layers (each a blob of this store), when the writer recorded them: the
   * bundle's index blob (`digest`) names them too.
   */
  layers?: Array<{ digest: Digest; size: number; role: string }>;
}

/** Registered: the CLI bundle's chunks each hold a copy of this module (scripts/bundle-cli.mjs). */
const MISSING_BLOB = Symbol.for("envpack.missingBlob");

/**
 * Whether `error` is {@link LocalStore.record}'s refusal to index a blob the store lacks: a
 * writer's blob that a concurrent `cache gc` removed before its record was written.
 */
export function isMissingBlob(error: unknown): boolean {
  return typeof error === "object" && error !== null && MISSING_BLOB in error;
}

/** Uses of a record closer together than this are one use to gc (see LocalStore.markUsed). */
export const USE_RESOLUTION_MS = 60_000;

/** One blob in the store. */
export interface BlobInfo {
  digest: Digest;
  size: number;
  path: string;
  /** Input digests whose index records point at this blob. */
  inputs: Digest[];
  /** Keys of the index records pointing at this blob (one per set of build options). */
  keys: Digest[];
  usedAt: number;
}

/**
 * The store's layout under `root`:
 * `blobs/sha256/<hex>` (immutable, verified before they get their name),
 * `index/sha256/<key hex>.json` (one {@link IndexRecord} each), `tmp/` (in-flight writes).
 */
export class LocalStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** Path of a blob (whether or not it exists). */
  blobPath(digest: Digest): string {
    return join(this.root, "blobs", "sha256", hexOf(digest));
  }

  /** The blob's size in bytes, or null when it is absent. */
  async sizeOf(digest: Digest): Promise<number | null> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** True when the blob is present. */
  async has(digest: Digest): Promise<boolean> {
    try {
      await stat(this.blobPath(digest));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * Adds a file as a blob: hashes it, rejects a mismatch with `expected` (IntegrityError
   * ENVPACK_INTEGRITY_DIGEST_MISMATCH), then links or copies it into place atomically. Two
   * writers of the same blob both succeed and leave one blob. `hashedByWriter`: `expected` was
   * computed from the very bytes written to `file` by this process (writeBundle's own hash), so
   * the file is not read again. `synced`: the writer flushed `file` to disk (an atomic write
   * did), so a link to it is not flushed again; a copy still is.
   */
  async putFile(
    file: string,
    expected?: Digest,
    options: { hashedByWriter?: boolean; synced?: boolean } = {},
  ): Promise<{ digest: Digest; size: number; path: string }> {
    const actual =
      options.hashedByWriter === true && expected !== undefined
        ? { digest: expected, size: (await stat(file)).size }
        : await hashFile(file);
    if (expected !== undefined && actual.digest !== expected) {
      throw new IntegrityError(
        "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
        `bytes of ${basename(file)} hash to ${actual.digest}, expected ${expected}`,
        {
          hint: "The source served or stored corrupt bytes; nothing was cached.",
          details: { expected, actual: actual.digest },
        },
      );
    }
    const target = this.blobPath(actual.digest);
    // A blob already there is replaced by these verified bytes (it may be damaged), unless these
    // are its own.
    if (resolve(file) === target) return { ...actual, path: target };
    // Bytes the writer flushed are on disk through a link to them too; a copy is flushed here.
    const synced = options.synced === true;
    await writeAtomic(
      target,
      async (temp) => {
        if (!(await linkOrCopy(file, temp)) && synced) await syncFile(temp);
      },
      { tempDir: await this.#tempDir(), fsync: !synced },
    );
    return { ...actual, path: target };
  }

  /** Reads the index record for a key, or null. A corrupt or keyless (older) record counts as absent. */
  async lookup(key: Digest): Promise<IndexRecord | null> {
    let text: string;
    try {
      text = await readFile(this.#indexPath(key), "utf8");
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
    try {
      const record = JSON.parse(text) as IndexRecord;
      return isDigest(record.digest) &&
        record.key === key &&
        isDigest(record.inputDigest)
        ? record
        : null;
    } catch (error) {
      if (error instanceof SyntaxError) return null;
      throw error;
    }
  }

  /** Whether the index holds no record at all (no {@link lookup} can find one): reads one name. */
  async holdsNoRecords(): Promise<boolean> {
    let dir;
    try {
      dir = await opendir(join(this.root, "index", "sha256"));
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
    try {
      return (await dir.read()) === null;
    } finally {
      await dir.close();
    }
  }

  /**
   * Writes the index record (atomically) once its blob is in the store, flushed to disk unless
   * `fsync: false`: for a cache, whose records a crash may lose as {@link markUsed}'s (no record,
   * the old one, or one that reads as absent: a rebuild), never pointing a key at other bytes,
   * since the blobs it names were flushed before they were named.
   * @throws Error (see {@link isMissingBlob}) when the blob or a listed layer is not in the store
   */
  async record(
    record: IndexRecord,
    options: { fsync?: boolean } = {},
  ): Promise<void> {
    for (const digest of [
      record.digest,
      ...(record.layers ?? []).map((l) => l.digest),
    ])
      if (!(await this.has(digest)))
        throw Object.assign(
          new Error(`refusing to index missing blob ${digest}`),
          { [MISSING_BLOB]: digest },
        );
    await this.#write(record, options.fsync ?? true);
  }

  /**
   * Records a use of a record {@link lookup} returned: `usedAt` orders gc (least recently used
   * first). A use within {@link USE_RESOLUTION_MS} after the recorded one writes nothing, so
   * repeated hits (a Makefile's) cost no write; gc's order is exact between uses further apart.
   * Otherwise the record is rewritten atomically but without fsync, and its blobs are not
   * checked again (it names the same ones). A crash can lose the write, leaving the old record
   * (an older use) or, where a file system does not order the rename after the data, one that
   * reads as absent (one rebuild); neither can point a key at other bytes.
   */
  async markUsed(record: IndexRecord, usedAt: number): Promise<void> {
    const since = usedAt - record.usedAt;
    if (since >= 0 && since < USE_RESOLUTION_MS) return;
    await this.#write({ ...record, usedAt }, false);
  }

  /**
   * Every blob with the inputs that point at it, newest use first; one removed meanwhile (another
   * gc or `cache rm`) is left out.
   */
  async list(): Promise<BlobInfo[]> {
    const records = await this.#records();
    const blobs = await listDir(join(this.root, "blobs", "sha256"));
    const out = await Promise.all(
      blobs.map(async (hex): Promise<BlobInfo | null> => {
        const digest = `sha256:${hex}` as Digest;
        const path = this.blobPath(digest);
        let info: Stats;
        try {
          info = await stat(path);
        } catch (error) {
          if (isNotFound(error)) return null;
          throw error;
        }
        const pointing = records.filter((r) => r.digest === digest);
        return {
          digest,
          size: info.size,
          path,
          inputs: [...new Set(pointing.map((r) => r.inputDigest))],
          keys: pointing.map((r) => r.key),
          usedAt: Math.max(info.mtimeMs, ...pointing.map((r) => r.usedAt)),
        };
      }),
    );
    return out
      .filter((b): b is BlobInfo => b !== null)
      .sort((a, b) => b.usedAt - a.usedAt);
  }

  /**
   * Removes a blob and every index record pointing at it (keyless older records too); returns
   * whether it existed.
   */
  async remove(digest: Digest): Promise<boolean> {
    const dir = join(this.root, "index", "sha256");
    for (const name of await listDir(dir)) {
      if (!name.endsWith(".json")) continue;
      let record: Partial<IndexRecord>;
      try {
        record = JSON.parse(
          await readFile(join(dir, name), "utf8"),
        ) as Partial<IndexRecord>;
      } catch (error) {
        if (isNotFound(error) || error instanceof SyntaxError) continue;
        throw error;
      }
      if (record.digest === digest) await rm(join(dir, name), { force: true });
    }
    const existed = await this.has(digest);
    await rm(this.blobPath(digest), { force: true });
    return existed;
  }

  /**
   * Removes the index records no lookup finds or can use: unreadable ones, ones written before
   * keys (no key, or not the key their file is named after) and ones whose blob is gone. A
   * writer records a blob only once it is in the store, so none is a record being written; a
   * record rewritten meanwhile may go too (its key then misses once, never names other bytes).
   * @returns how many it removed
   */
  async pruneRecords(): Promise<number> {
    const dir = join(this.root, "index", "sha256");
    let removed = 0;
    for (const name of await listDir(dir)) {
      if (!name.endsWith(".json")) continue;
      const key = `sha256:${name.slice(0, -".json".length)}`;
      const record = isDigest(key) ? await this.lookup(key) : null;
      if (record !== null && (await this.has(record.digest))) continue;
      await rm(join(dir, name), { force: true });
      removed += 1;
    }
    return removed;
  }

  /**
   * Removes least recently used bundles until the store's blobs total at most `maxBytes`, each
   * blob counted once. A layered bundle's layers (its record's `layers`) go with the last bundle
   * that lists them, never while a kept bundle does. Then removes the index records no lookup can use ({@link pruneRecords})
   * and the temps of writers that are gone (never a live writer's).
   */
  async gc(
    maxBytes: number,
  ): Promise<{ removed: Digest[]; freed: number; kept: number }> {
    if (!Number.isFinite(maxBytes) || maxBytes < 0) {
      throw new UsageError(
        "ENVPACK_USAGE_BAD_ARGUMENT",
        `--max-size must be a non-negative size, got ${maxBytes}`,
      );
    }
    const [blobs, records] = await Promise.all([this.list(), this.#records()]);
    const sizeOf = new Map(blobs.map((b) => [b.digest, b.size]));
    /** The bundles (blobs records point at) that list each layer. */
    const listers = new Map<Digest, Set<Digest>>();
    for (const record of records)
      for (const layer of record.layers ?? []) {
        const set = listers.get(layer.digest) ?? new Set<Digest>();
        set.add(record.digest);
        listers.set(layer.digest, set);
      }
    const layersOf = new Map<Digest, Digest[]>();
    for (const record of records)
      if (record.layers !== undefined)
        layersOf.set(
          record.digest,
          record.layers.map((l) => l.digest),
        );
    // Units in least recently used order: bundles, and blobs no bundle lists any more.
    const units = blobs.filter(
      (b) => !listers.has(b.digest) || layersOf.has(b.digest),
    );
    units.sort((a, b) => a.usedAt - b.usedAt);
    let total = blobs.reduce((sum, b) => sum + b.size, 0);
    const removed: Digest[] = [];
    const gone = new Set<Digest>();
    const drop = async (digest: Digest) => {
      await this.remove(digest);
      gone.add(digest);
      removed.push(digest);
      total -= sizeOf.get(digest) ?? 0;
    };
    for (const unit of units) {
      if (total <= maxBytes) break;
      if (gone.has(unit.digest)) continue;
      await drop(unit.digest);
      for (const layer of layersOf.get(unit.digest) ?? []) {
        if (gone.has(layer) || !sizeOf.has(layer)) continue;
        const users = listers.get(layer) ?? new Set<Digest>();
        if ([...users].every((user) => gone.has(user) || !sizeOf.has(user)))
          await drop(layer);
      }
    }
    await this.pruneRecords();
    await this.#removeDeadTemps();
    return {
      removed,
      freed: blobs.reduce((sum, b) => sum + b.size, 0) - total,
      kept: total,
    };
  }

  /**
   * The temps in tmp/ whose writer is gone: atomic writes' (see tempWriterPid) and, where a build
   * cache serves as the store, builds' `<what>-<pid>-<hex>` directories.
   */
  async #removeDeadTemps(): Promise<void> {
    const dir = join(this.root, "tmp");
    for (const name of await namesIfPresent(dir)) {
      const pid =
        tempWriterPid(name) ?? /^[a-z]+-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
      if (pid !== undefined && processRuns(Number(pid))) continue;
      await rm(join(dir, name), { recursive: true, force: true });
    }
  }

  async #records(): Promise<IndexRecord[]> {
    const names = await listDir(join(this.root, "index", "sha256"));
    const records = await Promise.all(
      names
        .filter((n) => n.endsWith(".json"))
        .map((n) => this.lookup(`sha256:${n.slice(0, -5)}` as Digest)),
    );
    return records.filter((r): r is IndexRecord => r !== null);
  }

  async #write(record: IndexRecord, fsync: boolean): Promise<void> {
    await writeAtomic(
      this.#indexPath(record.key),
      (temp) => writeFile(temp, JSON.stringify(record, null, 2) + "\n"),
      { tempDir: await this.#tempDir(), fsync },
    );
  }

  #indexPath(key: Digest): string {
    return join(this.root, "index", "sha256", `${hexOf(key)}.json`);
  }

  /** Temps live outside blobs/ and index/, which are listed: a temp there would read as an entry. */
  async #tempDir(): Promise<string> {
    const dir = join(this.root, "tmp");
    await mkdir(dir, { recursive: true });
    return dir;
  }
}

function hexOf(digest: Digest): string {
  if (!isDigest(digest))
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `not a sha256 digest: ${digest}`,
    );
  return digest.slice("sha256:".length);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith("."));
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

/**
 * A hard link to `from` at a new path `to` when both are on one file system (blobs are never
 * written in place: a link is as good as a copy and takes no time), else a copy.
 * @returns whether it linked
 */
export async function linkOrCopy(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    if (!["EXDEV", "EPERM", "EMLINK", "ENOTSUP"].includes(code)) throw error;
    await copyFile(from, to, constants.COPYFILE_EXCL);
    return false;
  }
}
