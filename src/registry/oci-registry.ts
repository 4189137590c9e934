// Bundles in an OCI distribution registry: the bundle is a blob, named by an image manifest with
// envpack's artifact type, tagged `input-<hex of the input digest>` so a lookup is one request.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { basename } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  IntegrityError,
  RemoteError,
  digestOf,
  redactUrl,
  isDigest,
  writeAtomic,
  type Digest,
  type OnEvent,
} from "../core/index.js";
import { OciClient, type OciClientOptions } from "./oci-client.js";
import type { Deadline } from "./deadline.js";
import type { Watchdog } from "./watchdog.js";
import type { Registry, RegistryEntry, TransferOptions } from "./registry.js";

/** The manifest's `artifactType`: what the artifact is. */
export const BUNDLE_ARTIFACT_TYPE = "application/vnd.envpack.bundle.v1";
/** The one layer's media type: the bundle file itself. */
export const BUNDLE_LAYER_TYPE = "application/vnd.envpack.bundle.v1.tar+zstd";
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
/** The OCI empty descriptor, used as config: artifacts carry no image config. */
const EMPTY_CONFIG = {
  mediaType: "application/vnd.oci.empty.v1+json",
  content: Buffer.from("{}"),
};
const INPUT_ANNOTATION = "dev.envpack.input-digest";
const META_PREFIX = "dev.envpack.meta.";
/** Progress at most this often (besides a transfer's first and last event), in ms. */
const PROGRESS_INTERVAL_MS = 250;

/** The tag under which a bundle is found by its input digest. */
export function inputTag(inputDigest: Digest): string {
  return `input-${inputDigest.slice("sha256:".length)}`;
}

/** A registry at `origin`, one repository. */
export class OciRegistry implements Registry {
  readonly displayUrl: string;
  readonly #client: OciClient;
  readonly #repository: string;

  constructor(options: OciClientOptions & { repository: string }) {
    this.displayUrl = options.displayUrl;
    this.#client = new OciClient(options);
    this.#repository = options.repository;
  }

  async lookup(
    inputDigest: Digest,
    options: TransferOptions = {},
  ): Promise<RegistryEntry | null> {
    const response = await this.#client.send({
      method: "GET",
      url: this.#path(`manifests/${inputTag(inputDigest)}`),
      headers: { Accept: MANIFEST_TYPE },
      signal: options.signal,
      onEvent: options.onEvent,
    });
    if (response.status === 404) return null;
    if (response.status !== 200)
      throw await this.#client.statusError(response, "GET manifest");
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      options.signal?.throwIfAborted();
      throw this.#client.lostError(response.url, "GET manifest", error);
    }
    try {
      return entryOf(JSON.parse(text), inputDigest);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      // Something answered in the registry's place (a proxy's or captive portal's page).
      throw new RemoteError(
        "ENVPACK_REMOTE_HTTP",
        `the registry ${this.displayUrl} answered GET manifest with something that is not JSON`,
        {
          url: redactUrl(response.url),
          status: response.status,
          hint: "Check that the URL points at an OCI distribution registry and nothing in between rewrites its answers.",
        },
      );
    }
  }

  async has(digest: Digest, options: TransferOptions = {}): Promise<boolean> {
    const response = await this.#client.send({
      method: "HEAD",
      url: this.#path(`blobs/${digest}`),
      signal: options.signal,
      onEvent: options.onEvent,
    });
    if (response.status === 404) return false;
    if (response.status !== 200)
      throw await this.#client.statusError(response, "HEAD blob");
    return true;
  }

  async push(
    file: string,
    entry: RegistryEntry,
    options: TransferOptions = {},
  ): Promise<void> {
    const size = (await stat(file)).size;
    if (size !== entry.size)
      throw new IntegrityError(
        "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
        `${basename(file)} has ${size} bytes, its entry says ${entry.size}`,
        { details: { digest: entry.digest } },
      );
    const configDigest = digestOf(EMPTY_CONFIG.content);
    // Blobs first, the tag last: an interrupted push never leaves a tag naming a missing blob.
    if (!(await this.has(configDigest, options)))
      await this.#upload(
        configDigest,
        EMPTY_CONFIG.content.length,
        () => EMPTY_CONFIG.content,
        options,
      );
    if (!(await this.has(entry.digest, options))) {
      await this.#upload(
        entry.digest,
        size,
        () =>
          counted(
            createReadStream(file),
            "push",
            entry.digest,
            size,
            options.onEvent,
          ),
        options,
      );
    }
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      artifactType: BUNDLE_ARTIFACT_TYPE,
      config: {
        mediaType: EMPTY_CONFIG.mediaType,
        digest: configDigest,
        size: EMPTY_CONFIG.content.length,
      },
      layers: [
        {
          mediaType: BUNDLE_LAYER_TYPE,
          digest: entry.digest,
          size,
        },
      ],
      annotations: {
        [INPUT_ANNOTATION]: entry.inputDigest,
        ...Object.fromEntries(
          Object.entries(entry.meta)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([k, v]) => [`${META_PREFIX}${k}`, v]),
        ),
      },
    });
    const response = await this.#client.send({
      method: "PUT",
      url: this.#path(`manifests/${inputTag(entry.inputDigest)}`),
      headers: { "Content-Type": MANIFEST_TYPE },
      body: () => manifest,
      signal: options.signal,
      onEvent: options.onEvent,
    });
    if (response.status !== 201)
      throw await this.#client.statusError(response, "PUT manifest");
    await response.arrayBuffer();
  }

  async pull(
    digest: Digest,
    destFile: string,
    options: TransferOptions = {},
  ): Promise<void> {
    // A download cut half-way starts over: the bytes so far cannot be trusted or resumed.
    await this.#client.retrying(
      (deadline) => this.#pullOnce(digest, destFile, options, deadline),
      { what: `pull of ${digest}`, ...options },
    );
  }

  async #pullOnce(
    digest: Digest,
    destFile: string,
    options: TransferOptions,
    deadline: Deadline,
  ): Promise<void> {
    const watchdog = this.#client.watchdog(deadline);
    try {
      await this.#receiveBlob(digest, destFile, watchdog, options, deadline);
    } finally {
      watchdog.stop();
    }
  }

  async #receiveBlob(
    digest: Digest,
    destFile: string,
    watchdog: Watchdog,
    options: TransferOptions,
    deadline: Deadline,
  ): Promise<void> {
    const response = await this.#client.send({
      method: "GET",
      url: this.#path(`blobs/${digest}`),
      signal: options.signal,
      retries: 0,
      watchdog,
      deadline,
    });
    if (response.status !== 200)
      throw await this.#client.statusError(response, "GET blob");
    const total = Number(response.headers.get("content-length") ?? 0);
    const hash = createHash("sha256");
    await writeAtomic(destFile, async (temp) => {
      await receive(response.body as NodeJS.ReadableStream, temp, {
        hash,
        arrived: () => watchdog.touch(),
        progress: (bytes) => {
          options.onEvent?.({
            type: "registry:transfer",
            direction: "pull",
            digest,
            bytes,
            total,
          });
        },
        lost: (error) => {
          options.signal?.throwIfAborted();
          return this.#client.lostError(
            response.url,
            "GET blob",
            watchdog.fired ? watchdog.reason : error,
          );
        },
      });
      const actual: Digest = `sha256:${hash.digest("hex")}`;
      if (actual !== digest)
        throw new IntegrityError(
          "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
          `the registry ${this.displayUrl} served bytes hashing to ${actual} for ${digest}`,
          {
            hint: "The registry or something between holds corrupt data; nothing was kept. Push the bundle again from a machine that has it.",
            details: { expected: digest, actual },
          },
        );
    });
  }

  /**
   * A monolithic upload: open a session, then PUT the bytes with their digest. A failed attempt
   * opens a new session and sends the bytes again from the start: the registry drops a session
   * it saw part of a body for.
   */
  #upload(
    digest: Digest,
    size: number,
    body: () => NodeJS.ReadableStream | Buffer,
    options: TransferOptions,
  ): Promise<void> {
    return this.#client.retrying(
      async (deadline) => {
        const started = await this.#client.send({
          method: "POST",
          url: this.#path("blobs/uploads/"),
          headers: { "Content-Length": "0" },
          signal: options.signal,
          retries: 0,
          deadline,
        });
        const location = started.headers.get("location");
        if (started.status !== 202 || location === null)
          throw await this.#client.statusError(started, "POST upload");
        await started.arrayBuffer();
        const url = new URL(location, started.url);
        url.searchParams.set("digest", digest);
        const done = await this.#client.send({
          method: "PUT",
          url: url.href,
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Length": String(size),
          },
          body: body as () => Buffer,
          signal: options.signal,
          retries: 0,
          deadline,
        });
        if (done.status !== 201)
          throw await this.#client.statusError(done, "PUT blob");
        await done.arrayBuffer();
      },
      { what: `upload of ${digest}`, ...options },
    );
  }

  #path(rest: string): string {
    return `/v2/${this.#repository}/${rest}`;
  }
}

/**
 * Writes a response body to a new file while hashing it. The socket's chunks are gathered into
 * batches of 4 MB, each written with one writev while the next one arrives (at most one write in
 * flight): an awaited write per chunk, or a receive stalled by every write, would cost more than
 * the transfer. A failure of the body itself (the connection dropped) goes through `lost`; file
 * errors pass unchanged.
 */
async function receive(
  body: NodeJS.ReadableStream,
  file: string,
  how: {
    hash: ReturnType<typeof createHash>;
    /** Called for every chunk. */
    arrived: () => void;
    /** Bytes so far: 0 first, the total last, at most every 250 ms between. */
    progress: (bytes: number) => void;
    lost: (error: unknown) => Error;
  },
): Promise<void> {
  const { hash, arrived, lost } = how;
  const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let handle: FileHandle | undefined;
  let writing: Promise<unknown> = Promise.resolve();
  try {
    handle = await open(file, "wx");
    const to = handle;
    let batch: Buffer[] = [];
    let batched = 0;
    let position = 0;
    let bytes = 0;
    const report = throttled(how.progress);
    report(0);
    const flush = async () => {
      await writing;
      const buffers = batch;
      const at = position;
      position += batched;
      batch = [];
      batched = 0;
      writing = writeAll(to, buffers, at);
      // Seen by the next flush, or by the final await; not unhandled meanwhile.
      writing.catch(() => {});
    };
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (error) {
        throw lost(error);
      }
      if (next.done === true) break;
      const chunk = next.value;
      arrived();
      hash.update(chunk);
      bytes += chunk.length;
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WRITE_BATCH) await flush();
      report(bytes);
    }
    await flush();
    await writing;
    report(bytes, true);
  } finally {
    // Stops the body when a write failed (a no-op once it ended).
    await chunks.return?.();
    await writing.catch(() => {});
    await handle?.close();
  }
}

/** Bytes of received chunks gathered into one write. */
const WRITE_BATCH = 4 * 1024 * 1024;

/** Writes `buffers` at `position`, however many calls that takes. */
async function writeAll(
  handle: FileHandle,
  buffers: Buffer[],
  position: number,
): Promise<void> {
  let at = position;
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest, at);
    at += bytesWritten;
    const left: Buffer[] = [];
    for (const buffer of rest) {
      if (bytesWritten >= buffer.length) bytesWritten -= buffer.length;
      else {
        left.push(buffer.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    rest = left;
  }
}

/** The registry entry a manifest describes, or null when it is not an envpack bundle's. */
function entryOf(json: unknown, inputDigest: Digest): RegistryEntry | null {
  // Read from the network: any JSON at all may arrive here.
  if (json === null || typeof json !== "object") return null;
  const manifest = json as {
    artifactType?: unknown;
    layers?: unknown;
    annotations?: Record<string, unknown> | null;
  };
  const layer = Array.isArray(manifest.layers)
    ? (manifest.layers as unknown[]).find(
        (l): l is { digest?: unknown; size?: unknown } =>
          l !== null &&
          typeof l === "object" &&
          (l as { mediaType?: unknown }).mediaType === BUNDLE_LAYER_TYPE,
      )
    : undefined;
  if (
    manifest.artifactType !== BUNDLE_ARTIFACT_TYPE ||
    layer === undefined ||
    typeof layer.digest !== "string" ||
    !isDigest(layer.digest) ||
    typeof layer.size !== "number" ||
    !Number.isSafeInteger(layer.size) ||
    layer.size < 0 ||
    manifest.annotations?.[INPUT_ANNOTATION] !== inputDigest
  )
    return null;
  const meta: Record<string, string> = {};
  for (const [key, value] of Object.entries(manifest.annotations ?? {}))
    if (key.startsWith(META_PREFIX) && typeof value === "string")
      meta[key.slice(META_PREFIX.length)] = value;
  return { digest: layer.digest, size: layer.size, inputDigest, meta };
}

/**
 * An upload body: the source piped through a pass-through that counts bytes into
 * `registry:transfer` events.
 */
function counted(
  source: NodeJS.ReadableStream,
  direction: "push" | "pull",
  digest: Digest,
  total: number,
  onEvent: OnEvent | undefined,
): Transform {
  let bytes = 0;
  const report = throttled((sent) =>
    onEvent?.({
      type: "registry:transfer",
      direction,
      digest,
      bytes: sent,
      total,
    }),
  );
  report(0);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      report(bytes);
      callback(null, chunk);
    },
    flush(callback) {
      report(bytes, true);
      callback();
    },
  });
  pipeline(source, counter).catch((error: unknown) =>
    counter.destroy(error as Error),
  );
  return counter;
}

/**
 * A progress reporter that passes on the first call, the last (`end`), and otherwise at most one
 * call per {@link PROGRESS_INTERVAL_MS}: a loopback transfer moves hundreds of MB a second.
 */
function throttled(
  report: (bytes: number) => void,
): (bytes: number, end?: boolean) => void {
  let at = -Infinity;
  return (bytes, end = false) => {
    const now = Date.now();
    if (!end && now - at < PROGRESS_INTERVAL_MS) return;
    at = now;
    report(bytes);
  };
}
