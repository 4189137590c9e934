// What a lookup makes of tag answers that are not envpack's manifest: none (null) or, for an
// answer that is not JSON at all, a coded RemoteError; never a TypeError or SyntaxError.

import { randomBytes } from "node:crypto";
import { expect, inject, it } from "vitest";
import { RemoteError, type Digest } from "../../src/core/index.js";
import { openRegistry } from "../../src/registry/index.js";
import { startProxy } from "../helpers/http-proxy.js";

it("finds no entry in a foreign or malformed manifest, and refuses an answer that is not JSON", async () => {
  const inputDigest: Digest = `sha256:${randomBytes(32).toString("hex")}`;
  const layer = {
    mediaType: "application/vnd.envpack.bundle.v1.tar+zstd",
    digest: `sha256:${"a".repeat(64)}`,
    size: 10,
  };
  const manifest = (fields: Record<string, unknown>) =>
    JSON.stringify({
      schemaVersion: 2,
      artifactType: "application/vnd.envpack.bundle.v1",
      layers: [layer],
      annotations: { "dev.envpack.input-digest": inputDigest },
      ...fields,
    });
  const answers = [
    manifest({}),
    "null",
    "[1]",
    manifest({ layers: [null, 3] }),
    manifest({ layers: [{ ...layer, size: -1 }] }),
    manifest({ annotations: null }),
    manifest({ artifactType: "application/vnd.other" }),
    "<html>sign in</html>",
  ];
  let index = 0;
  const fake = await startProxy({
    target: inject("registry").openHost,
    decide: () => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: answers[index++] ?? "",
    }),
  });
  try {
    const oci = openRegistry(
      `oci://${fake.host}/t-${randomBytes(6).toString("hex")}`,
      {
        insecure: true,
      },
    );
    expect(await oci.lookup(inputDigest)).toEqual({
      digest: layer.digest,
      size: 10,
      inputDigest,
      meta: {},
    });
    for (let i = 1; i < answers.length - 1; i++)
      expect(await oci.lookup(inputDigest)).toBeNull();
    const error = await oci.lookup(inputDigest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: "ENVPACK_REMOTE_HTTP", status: 200 });
  } finally {
    await fake.close();
  }
});
