// A registry reached over HTTPS whose bearer challenge names a token realm on plain HTTP: the
// user's credentials must not go there unless plain HTTP was chosen (--insecure). Real servers
// on 127.0.0.1: an HTTPS one with a certificate made for the test, a plain HTTP token service.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type Server,
} from "node:http";
import { createServer as createHttpsServer, globalAgent } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RemoteError } from "../../src/core/index.js";
import { openRegistry } from "../../src/registry/index.js";
import { caught } from "../helpers/registry-blobs.js";
import { tempDir } from "../helpers/temp-dir.js";

const digest = () => `sha256:${randomBytes(32).toString("hex")}` as const;

/** A self-signed certificate for 127.0.0.1, trusted by this process's default HTTPS agent. */
async function trustedCertificate(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await tempDir();
  execFileSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem"),
  ]);
  const [key, cert] = await Promise.all([
    readFile(join(dir, "key.pem")),
    readFile(join(dir, "cert.pem")),
  ]);
  globalAgent.options.ca = cert;
  return { key, cert };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

const servers: Server[] = [];
beforeEach(() => {
  delete globalAgent.options.ca;
});
afterEach(async () => {
  delete globalAgent.options.ca;
  globalAgent.destroy();
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    ),
  );
});

/**
 * A token service on plain HTTP that records what it is sent, and a registry that answers
 * every request with a bearer challenge naming it, over HTTPS (or plain HTTP).
 */
async function challengeToPlainRealm(tls: boolean): Promise<{
  host: string;
  seen: IncomingHttpHeaders[];
}> {
  const seen: IncomingHttpHeaders[] = [];
  const tokens = createHttpServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token: "t0ken" }));
  });
  servers.push(tokens);
  const tokenPort = await listen(tokens);
  const challenge = (
    req: { headers: IncomingHttpHeaders },
    res: import("node:http").ServerResponse,
  ) => {
    if (req.headers.authorization === "Bearer t0ken") {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(401, {
      "www-authenticate": `Bearer realm="http://127.0.0.1:${tokenPort}/token",service="reg",scope="repository:x:pull"`,
    });
    res.end();
  };
  const registry = tls
    ? createHttpsServer(await trustedCertificate(), challenge)
    : createHttpServer(challenge);
  servers.push(registry);
  return { host: `127.0.0.1:${await listen(registry)}`, seen };
}

describe("a bearer challenge naming a plain-HTTP token realm", () => {
  it("sends no credentials there from an HTTPS registry: RemoteError ENVPACK_REMOTE_AUTH", async () => {
    const password = randomBytes(9).toString("hex");
    const { host, seen } = await challengeToPlainRealm(true);
    const error = await caught(() =>
      openRegistry(`oci://${host}/x`, {
        credentials: { username: "ci", password },
        retries: 0,
      }).lookup(digest()),
    );
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: "ENVPACK_REMOTE_AUTH" });
    expect((error as RemoteError).hint).toContain("--insecure");
    expect(seen).toEqual([]);
    expect(JSON.stringify((error as RemoteError).toJSON())).not.toContain(
      password,
    );
  });

  it("still asks it for an anonymous token, which carries no secret", async () => {
    const { host, seen } = await challengeToPlainRealm(true);
    expect(
      await openRegistry(`oci://${host}/x`, { retries: 0 }).lookup(digest()),
    ).toBeNull();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.authorization).toBeUndefined();
  });

  it("sends the credentials when plain HTTP was chosen with insecure", async () => {
    const { host, seen } = await challengeToPlainRealm(false);
    expect(
      await openRegistry(`oci://${host}/x`, {
        insecure: true,
        credentials: { username: "ci", password: "pw" },
        retries: 0,
      }).lookup(digest()),
    ).toBeNull();
    expect(seen.map((h) => h.authorization)).toEqual([
      `Basic ${Buffer.from("ci:pw").toString("base64")}`,
    ]);
  });
});
