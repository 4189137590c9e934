// OCI transfers that lose their connection half-way, stall, redirect to nowhere, or are aborted:
// made for real by a proxy in front of docker-registry that drops or holds connections.

import { randomBytes } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import {
  hashFile,
  RemoteError,
  type EnvpackEvent,
  type OnEvent,
} from "../../src/core/index.js";
import { openRegistry } from "../../src/registry/index.js";
import { startProxy } from "../helpers/http-proxy.js";
import { freePort } from "../helpers/registry-server.js";
import { blobFile, caught } from "../helpers/registry-blobs.js";
import { tempDir } from "../helpers/temp-dir.js";

const openHost = () => inject("registry").openHost;
const repo = () => `t-${randomBytes(6).toString("hex")}`;

const options = { insecure: true, retries: 3, retryBaseMs: 10 };
const MB = 1024 * 1024;

describe("OCI transfers that break", () => {
  it("sends a blob again from the file when the connection drops during its upload", async () => {
    const { file, entry } = await blobFile(6 * MB);
    const name = repo();
    let cuts = 1;
    const proxy = await startProxy({
      target: openHost(),
      decide: (req) =>
        req.method === "PUT" &&
        (req.url ?? "").includes("/blobs/uploads/") &&
        Number(req.headers["content-length"]) === entry.size &&
        cuts-- > 0
          ? { forward: true, cutRequestAfter: 2 * MB }
          : { forward: true },
    });
    try {
      const oci = openRegistry(`oci://${proxy.host}/${name}`, options);
      await oci.push(file, entry);
      expect(cuts).toBeLessThan(0);
      expect(await oci.lookup(entry.inputDigest)).toEqual(entry);
    } finally {
      await proxy.close();
    }
    const dest = join(await tempDir(), "pulled.tar.zst");
    await openRegistry(`oci://${openHost()}/${name}`, options).pull(
      entry.digest,
      dest,
    );
    expect((await hashFile(dest)).digest).toBe(entry.digest);
  });

  it("downloads again when the connection drops during a pull, and keeps nothing when it always does", async () => {
    const { file, entry } = await blobFile(6 * MB);
    const name = repo();
    await openRegistry(`oci://${openHost()}/${name}`, options).push(
      file,
      entry,
    );
    let cuts = 1;
    const isBlobGet = (method?: string, url?: string) =>
      method === "GET" && (url ?? "").includes("/blobs/sha256:");
    const flaky = await startProxy({
      target: openHost(),
      decide: (req) =>
        isBlobGet(req.method, req.url) && cuts-- > 0
          ? { forward: true, cutResponseAfter: 2 * MB }
          : { forward: true },
    });
    const broken = await startProxy({
      target: openHost(),
      decide: (req) =>
        isBlobGet(req.method, req.url)
          ? { forward: true, cutResponseAfter: 2 * MB }
          : { forward: true },
    });
    try {
      const dir = await tempDir();
      await openRegistry(`oci://${flaky.host}/${name}`, options).pull(
        entry.digest,
        join(dir, "pulled.tar.zst"),
      );
      expect(cuts).toBeLessThan(0);
      expect((await hashFile(join(dir, "pulled.tar.zst"))).digest).toBe(
        entry.digest,
      );

      const empty = await tempDir();
      const error = await caught(() =>
        openRegistry(`oci://${broken.host}/${name}`, options).pull(
          entry.digest,
          join(empty, "pulled.tar.zst"),
        ),
      );
      expect(error).toBeInstanceOf(RemoteError);
      expect(error).toMatchObject({ code: "ENVPACK_REMOTE_UNREACHABLE" });
      expect(
        broken.requests.filter((r) => isBlobGet(...r.split(" "))),
      ).toHaveLength(options.retries + 1);
      expect(await readdir(empty)).toEqual([]);
    } finally {
      await Promise.all([flaky.close(), broken.close()]);
    }
  });

  it("keeps a signed redirect's query out of the error when its target cannot be reached", async () => {
    const { file, entry } = await blobFile(1024);
    const name = repo();
    await openRegistry(`oci://${openHost()}/${name}`, options).push(
      file,
      entry,
    );
    const secret = randomBytes(12).toString("hex");
    const gone = await freePort();
    // As a registry on object storage does: the blob GET redirects to a presigned URL.
    const redirecting = await startProxy({
      target: openHost(),
      decide: (req) =>
        req.method === "GET" && (req.url ?? "").includes("/blobs/sha256:")
          ? {
              status: 307,
              headers: {
                location: `http://127.0.0.1:${gone}/bucket/blob?X-Amz-Signature=${secret}`,
              },
            }
          : { forward: true },
    });
    const dest = join(await tempDir(), "pulled.tar.zst");
    try {
      const error = await caught(() =>
        openRegistry(`oci://${redirecting.host}/${name}`, {
          ...options,
          retries: 0,
        }).pull(entry.digest, dest),
      );
      expect(error).toMatchObject({ code: "ENVPACK_REMOTE_UNREACHABLE" });
      expect((error as RemoteError).message).not.toContain(secret);
      expect(JSON.stringify((error as RemoteError).toJSON())).not.toContain(
        secret,
      );
    } finally {
      await redirecting.close();
    }
  });

  it("stops a push and a pull when their signal aborts, leaving no tag and no file", async () => {
    const { file, entry } = await blobFile(16 * MB);
    const name = repo();
    const slow = await startProxy({
      target: openHost(),
      uploadBytesPerSecond: 16 * MB,
    });
    const reason = new Error("stopped by the test");
    try {
      const pushing = new AbortController();
      const pushError = await caught(() =>
        openRegistry(`oci://${slow.host}/${name}`, options).push(file, entry, {
          signal: pushing.signal,
          onEvent: (event) => {
            if (event.type === "registry:transfer" && event.bytes > 0)
              pushing.abort(reason);
          },
        }),
      );
      expect(pushError).toBe(reason);
    } finally {
      await slow.close();
    }
    const oci = openRegistry(`oci://${openHost()}/${name}`, options);
    expect(await oci.lookup(entry.inputDigest)).toBeNull();

    await oci.push(file, entry);
    const dir = await tempDir();
    const pulling = new AbortController();
    const pullError = await caught(() =>
      oci.pull(entry.digest, join(dir, "pulled.tar.zst"), {
        signal: pulling.signal,
        onEvent: (event) => {
          if (event.type === "registry:transfer" && event.bytes < entry.size)
            pulling.abort(reason);
        },
      }),
    );
    expect(pullError).toBe(reason);
    expect(await readdir(dir)).toEqual([]);
  });

  it("stops retrying a registry that accepts and never answers at its deadline, with one warning per retry", async () => {
    // Accepts connections, reads them, never answers: without a deadline, 1000 retries would
    // take far longer than the test may run.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) =>
      silent.listen(0, "127.0.0.1", resolve),
    );
    const address = silent.address();
    if (address === null || typeof address === "string")
      throw new Error("no port");
    const stubborn = {
      insecure: true,
      retries: 1000,
      retryBaseMs: 1,
      idleTimeoutMs: 100,
      deadlineMs: 600,
    };
    try {
      const oci = openRegistry(
        `oci://127.0.0.1:${address.port}/${repo()}`,
        stubborn,
      );
      for (const operation of [
        (onEvent: OnEvent) =>
          oci.lookup(`sha256:${randomBytes(32).toString("hex")}`, { onEvent }),
        async (onEvent: OnEvent) =>
          oci.pull(
            `sha256:${randomBytes(32).toString("hex")}`,
            join(await tempDir(), "pulled.tar.zst"),
            { onEvent },
          ),
      ]) {
        sockets.clear();
        const events: EnvpackEvent[] = [];
        const error = await caught(() =>
          operation((event) => events.push(event)),
        );
        expect(error).toBeInstanceOf(RemoteError);
        expect(error).toMatchObject({
          code: "ENVPACK_REMOTE_UNREACHABLE",
          details: { deadlineMs: stubborn.deadlineMs },
        });
        // Every attempt but the first was announced, and said why. The registry saw each attempt
        // but perhaps the last, which the deadline can cut before the server accepts it.
        expect(sockets.size).toBeGreaterThan(1);
        expect(sockets.size).toBeLessThan(stubborn.retries);
        expect(events.length).toBeGreaterThanOrEqual(sockets.size - 1);
        expect(events.length).toBeLessThanOrEqual(sockets.size);
        for (const event of events)
          expect(event).toMatchObject({
            type: "warn",
            code: "ENVPACK_WARN_REGISTRY_RETRY",
            message: expect.stringContaining("no data for 0.1 s"),
          });
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("gives up on a registry that goes silent, and downloads again after a stall", async () => {
    // Accepts connections, reads them, never answers.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) =>
      silent.listen(0, "127.0.0.1", resolve),
    );
    const address = silent.address();
    if (address === null || typeof address === "string")
      throw new Error("no port");
    const quick = { ...options, retries: 1, idleTimeoutMs: 300 };
    try {
      const error = await caught(() =>
        openRegistry(`oci://127.0.0.1:${address.port}/${repo()}`, quick).lookup(
          `sha256:${randomBytes(32).toString("hex")}`,
        ),
      );
      expect(error).toMatchObject({ code: "ENVPACK_REMOTE_UNREACHABLE" });
      expect(sockets.size).toBe(quick.retries + 1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }

    const { file, entry } = await blobFile(6 * MB);
    const name = repo();
    await openRegistry(`oci://${openHost()}/${name}`, options).push(
      file,
      entry,
    );
    let stalls = 1;
    const stalling = await startProxy({
      target: openHost(),
      decide: (req) =>
        req.method === "GET" &&
        (req.url ?? "").includes("/blobs/sha256:") &&
        stalls-- > 0
          ? { forward: true, stallResponseAfter: 2 * MB }
          : { forward: true },
    });
    // The stall lasts forever, so the watchdog must end it. One as short as the silent
    // registry's could also end the retry on a loaded machine, so this one waits longer.
    const patient = { ...options, idleTimeoutMs: 2000 };
    try {
      const dest = join(await tempDir(), "pulled.tar.zst");
      await openRegistry(`oci://${stalling.host}/${name}`, patient).pull(
        entry.digest,
        dest,
      );
      expect(stalls).toBeLessThan(0);
      expect((await hashFile(dest)).digest).toBe(entry.digest);
    } finally {
      await stalling.close();
    }
  });
});
