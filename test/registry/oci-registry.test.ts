// Registries against the real thing: Debian's docker-registry on 127.0.0.1, started by the
// test setup; faults made by a proxy in front of it or by killing it.

import { randomBytes } from "node:crypto";
import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { hashFile, isEnvpackError, RemoteError } from "../../src/core/index.js";
import {
  credentialsFrom,
  inputTag,
  openRegistry,
} from "../../src/registry/index.js";
import { startProxy, type ProxyDecision } from "../helpers/http-proxy.js";
import { freePort, startRegistry } from "../helpers/registry-server.js";
import { blobFile, caught, someInput } from "../helpers/registry-blobs.js";
import { tempDir } from "../helpers/temp-dir.js";

const registry = () => inject("registry");
const repo = () => `t-${randomBytes(6).toString("hex")}`;

describe("OCI registry (docker-registry)", () => {
  it("pushes, finds by input digest in one request, and pulls verified bytes", async () => {
    const { file, entry } = await blobFile();
    const url = `oci://${registry().openHost}/${repo()}`;
    const oci = openRegistry(url, { insecure: true });
    expect(await oci.lookup(entry.inputDigest)).toBeNull();
    await oci.push(file, entry);

    const proxy = await startProxy({ target: registry().openHost });
    try {
      const through = openRegistry(
        url.replace(registry().openHost, proxy.host),
        {
          insecure: true,
        },
      );
      expect(await through.lookup(entry.inputDigest)).toEqual(entry);
      expect(proxy.requests).toEqual([
        expect.stringContaining(`/manifests/${inputTag(entry.inputDigest)}`),
      ]);
    } finally {
      await proxy.close();
    }
    const dest = join(await tempDir(), "pulled.tar.zst");
    await oci.pull(entry.digest, dest);
    expect((await hashFile(dest)).digest).toBe(entry.digest);
  });

  it("takes two pushes of the same bundle at once, both succeeding", async () => {
    const { file, entry } = await blobFile(8 * 1024 * 1024);
    const oci = openRegistry(`oci://${registry().openHost}/${repo()}`, {
      insecure: true,
    });
    await Promise.all([oci.push(file, entry), oci.push(file, entry)]);
    expect(await oci.lookup(entry.inputDigest)).toEqual(entry);
  });

  it("names the registry, not the password, when credentials are refused", async () => {
    const { file, entry } = await blobFile(1024);
    const { authHost, username, password } = registry();
    const url = `oci://${authHost}/${repo()}`;
    const wrong = `${password}-wrong`;
    const error = await caught(() =>
      openRegistry(url, {
        insecure: true,
        credentials: { username, password: wrong },
      }).push(file, entry),
    );
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: "ENVPACK_REMOTE_AUTH", status: 401 });
    const shown = JSON.stringify((error as RemoteError).toJSON());
    expect(shown).toContain(authHost);
    expect(shown).not.toContain(wrong);
    expect((error as Error).message).not.toContain(wrong);

    const none = await caught(() =>
      openRegistry(url, { insecure: true }).lookup(entry.inputDigest),
    );
    expect(none).toMatchObject({ code: "ENVPACK_REMOTE_AUTH" });

    const right = openRegistry(url, {
      insecure: true,
      credentials: { username, password },
    });
    await right.push(file, entry);
    expect(await right.lookup(entry.inputDigest)).toEqual(entry);
  });

  it("catches a registry that serves corrupted bytes and keeps nothing", async () => {
    const { file, entry } = await blobFile();
    const name = repo();
    await openRegistry(`oci://${registry().openHost}/${name}`, {
      insecure: true,
    }).push(file, entry);
    const proxy = await startProxy({
      target: registry().openHost,
      decide: (req) => ({
        forward: true,
        corrupt: req.method === "GET" && (req.url ?? "").includes("/blobs/"),
      }),
    });
    try {
      const dir = await tempDir();
      const error = await caught(() =>
        openRegistry(`oci://${proxy.host}/${name}`, { insecure: true }).pull(
          entry.digest,
          join(dir, "pulled.tar.zst"),
        ),
      );
      expect(error).toMatchObject({
        code: "ENVPACK_INTEGRITY_DIGEST_MISMATCH",
      });
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it("retries 5xx answers with backoff, and gives up after the bound", async () => {
    const { file, entry } = await blobFile(1024);
    const name = repo();
    let failures = 2;
    const flaky = await startProxy({
      target: registry().openHost,
      decide: () =>
        failures-- > 0 ? { status: 503, body: "busy" } : { forward: true },
    });
    const down = await startProxy({
      target: registry().openHost,
      decide: () => ({ status: 503, body: "down" }),
    });
    try {
      const options = { insecure: true, retries: 3, retryBaseMs: 10 };
      const oci = openRegistry(`oci://${flaky.host}/${name}`, options);
      await oci.push(file, entry);
      expect(await oci.lookup(entry.inputDigest)).toEqual(entry);
      expect(flaky.requests.length).toBeGreaterThan(2);

      const error = await caught(() =>
        openRegistry(`oci://${down.host}/${name}`, options).lookup(
          entry.inputDigest,
        ),
      );
      expect(error).toMatchObject({ code: "ENVPACK_REMOTE_HTTP", status: 503 });
      expect(down.requests).toHaveLength(4);
    } finally {
      await Promise.all([flaky.close(), down.close()]);
    }
  });

  it("reports an unreachable registry after retrying", async () => {
    const port = await freePort();
    const error = await caught(() =>
      openRegistry(`oci://127.0.0.1:${port}/${repo()}`, {
        insecure: true,
        retries: 2,
        retryBaseMs: 10,
      }).lookup(someInput()),
    );
    expect(error).toMatchObject({ code: "ENVPACK_REMOTE_UNREACHABLE" });
    expect(isEnvpackError(error) && error.exitCode).toBe(1);
  });

  it("leaves no tag when the registry is killed mid-push, and takes the push again after a restart", async () => {
    const { file, entry } = await blobFile(16 * 1024 * 1024);
    const name = repo();
    const port = await freePort();
    const first = await startRegistry({ port });
    const slow = await startProxy({
      target: first.host,
      uploadBytesPerSecond: 8 * 1024 * 1024,
    });
    let second: Awaited<ReturnType<typeof startRegistry>> | undefined;
    try {
      const pushing = openRegistry(`oci://${slow.host}/${name}`, {
        insecure: true,
        retries: 0,
      }).push(file, entry, {
        onEvent: (event) => {
          if (event.type === "registry:transfer" && event.bytes > 0)
            void first.kill();
        },
      });
      expect(await caught(() => pushing)).toBeInstanceOf(RemoteError);

      second = await startRegistry({ port, storageDir: first.storageDir });
      const oci = openRegistry(`oci://${second.host}/${name}`, {
        insecure: true,
      });
      expect(await oci.lookup(entry.inputDigest)).toBeNull();
      await oci.push(file, entry);
      const dest = join(await tempDir(), "pulled.tar.zst");
      await oci.pull(entry.digest, dest);
      expect((await hashFile(dest)).digest).toBe(entry.digest);
    } finally {
      await slow.close();
      await second?.stop();
      await first.stop();
    }
  });

  it("answers a bearer challenge with a token from the challenge's realm", async () => {
    const { file, entry } = await blobFile(1024);
    const token = randomBytes(8).toString("hex");
    let issued = 0;
    const gate = await startProxy({
      target: registry().openHost,
      decide: (req): ProxyDecision => {
        if (req.url?.startsWith("/token")) {
          const basic = `Basic ${Buffer.from("ci:secret").toString("base64")}`;
          if (req.headers.authorization !== basic) return { status: 401 };
          issued++;
          return {
            status: 200,
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ token }),
          };
        }
        if (req.headers.authorization === `Bearer ${token}`)
          return { forward: true };
        return {
          status: 401,
          headers: {
            "www-authenticate": `Bearer realm="http://${req.headers.host}/token",service="test",scope="repository:x:pull,push"`,
          },
        };
      },
    });
    try {
      const oci = openRegistry(`oci://${gate.host}/${repo()}`, {
        insecure: true,
        credentials: { username: "ci", password: "secret" },
      });
      await oci.push(file, entry);
      expect(await oci.lookup(entry.inputDigest)).toEqual(entry);
      expect(issued).toBe(1);
      expect(gate.requests.some((r) => r.startsWith("GET /token?"))).toBe(true);
    } finally {
      await gate.close();
    }
  });
});

describe("directory registry", () => {
  it("round-trips through a plain path and a file: URL", async () => {
    const { file, entry } = await blobFile(1024 * 1024);
    const root = await tempDir();
    await openRegistry(root).push(file, entry);
    const again = openRegistry(`file://${root}`);
    expect(await again.lookup(entry.inputDigest)).toEqual(entry);
    const dest = join(await tempDir(), "pulled.tar.zst");
    await again.pull(entry.digest, dest);
    expect((await hashFile(dest)).digest).toBe(entry.digest);
  });

  it("pulls by hard link on one file system, still verified: a damaged blob is an IntegrityError and nothing is kept", async () => {
    const { file, entry } = await blobFile(64 * 1024);
    const root = await tempDir();
    const registry = openRegistry(root);
    await registry.push(file, entry);
    const blob = join(root, "blobs", "sha256", entry.digest.slice(7));
    const out = await tempDir();
    await registry.pull(entry.digest, join(out, "a.tar.zst"));
    expect((await stat(join(out, "a.tar.zst"))).ino).toBe(
      (await stat(blob)).ino,
    );

    // Damaged in place (as a broken disk or a careless hand would): the link shares the damage,
    // the verification finds it.
    await writeFile(blob, "not the bundle");
    await expect(
      registry.pull(entry.digest, join(out, "b.tar.zst")),
    ).rejects.toMatchObject({ code: "ENVPACK_INTEGRITY_DIGEST_MISMATCH" });
    expect((await readdir(out)).sort()).toEqual(["a.tar.zst"]);
  });
});

describe("openRegistry and credentialsFrom", () => {
  it.each([
    ["http://example.com/x"],
    ["oci://"],
    ["oci://host"],
    ["oci://host/UPPER"],
    ["oci://user:pw@host/repo"],
    ["ftp://host/repo"],
  ])("refuses %s", (url) => {
    expect(() => openRegistry(url)).toThrow(
      expect.objectContaining({ code: "ENVPACK_USAGE_BAD_REGISTRY_URL" }),
    );
  });

  it("takes the environment first, then the Docker config", () => {
    const dockerConfig = {
      auths: {
        "reg.example:5000": {
          auth: Buffer.from("alice:s3:cret").toString("base64"),
        },
        "https://other.example": { username: "bob", password: "pw" },
      },
    };
    const host = "reg.example:5000";
    expect(credentialsFrom({ env: {}, dockerConfig, host })).toEqual({
      username: "alice",
      password: "s3:cret",
    });
    expect(
      credentialsFrom({ env: {}, dockerConfig, host: "other.example" }),
    ).toEqual({ username: "bob", password: "pw" });
    expect(
      credentialsFrom({
        env: { ENVPACK_REGISTRY_USER: "ci", ENVPACK_REGISTRY_PASSWORD: "x" },
        dockerConfig,
        host,
      }),
    ).toEqual({ username: "ci", password: "x" });
    expect(
      credentialsFrom({ env: { ENVPACK_REGISTRY_TOKEN: "t" }, host }),
    ).toEqual({ token: "t" });
    expect(credentialsFrom({ env: {}, host: "none.example" })).toBeUndefined();
  });
});
