// Bundles in an OCI distribution registry: a bundle's blobs named by an image manifest with
// envpack's artifact type (see oci-manifest.ts), tagged `input-<hex of the input digest>` so a
// lookup is one request.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import {
  IntegrityError,
  RemoteError,
  redactUrl,
  writeAtomic,
  type Digest,
} from "../core/light.js";
import { OciClient, type OciClientOptions } from "./oci-client.js";
import type { Deadline } from "./deadline.js";
import {
  EMPTY_CONFIG,
  MANIFEST_TYPE,
  bundleManifest,
  entryOf,
  inputTag,
} from "./oci-manifest.js";
import { counted, receive } from "./oci-transfer.js";
import { emptyPushReport, pushBlob } from "./push-report.js";
import type { Watchdog } from "./watchdog.js";
import type {
  PushEntry,
  PushReport,
  Registry,
  RegistryEntry,
  TransferOptions,
} from "./registry.js";

export { inputTag };

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
    entry: PushEntry,
    options: TransferOptions = {},
  ): Promise<PushReport> {
    const report = emptyPushReport();
    // Blobs first (each checked with a HEAD, sent only when missing), the tag last: an
    // interrupted push never leaves a tag naming a missing blob.
    if (entry.layers === undefined)
      await this.#ensureBlob(
        { digest: EMPTY_CONFIG.digest, size: EMPTY_CONFIG.content.length },
        () => EMPTY_CONFIG.content,
        undefined,
        options,
      );
    for (const layer of entry.layers ?? [])
      await this.#ensureFile(layer.file, layer, report, options);
    await this.#ensureFile(file, entry, report, options);
    const manifest = bundleManifest(entry);
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
    return report;
  }

  /** A file's blob in the registry: sent (its size checked first) unless already there. */
  async #ensureFile(
    file: string,
    blob: { digest: Digest; size: number },
    report: PushReport,
    options: TransferOptions,
  ): Promise<void> {
    const size = (await stat(file)).size;
    if (size !== blob.size)
      throw new IntegrityError(
        "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
        `${basename(file)} has ${size} bytes, its entry says ${blob.size}`,
        { details: { digest: blob.digest } },
      );
    await this.#ensureBlob(
      blob,
      () =>
        counted(
          createReadStream(file),
          "push",
          blob.digest,
          size,
          options.onEvent,
        ),
      report,
      options,
    );
  }

  async #ensureBlob(
    blob: { digest: Digest; size: number },
    body: () => NodeJS.ReadableStream | Buffer,
    report: PushReport | undefined,
    options: TransferOptions,
  ): Promise<void> {
    await pushBlob(report, blob.digest, {
      isStored: () => this.has(blob.digest, options),
      send: async () => {
        // The registry checks the bytes against the digest the upload is closed with.
        await this.#upload(blob.digest, blob.size, body, options);
        return blob.size;
      },
    });
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
