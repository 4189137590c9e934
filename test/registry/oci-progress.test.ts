// registry:transfer events of an OCI push and pull: from 0 to the total, never backwards.

import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, inject, it } from "vitest";
import { hashFile, type EnvpackEvent } from "../../src/core/index.js";
import { openRegistry } from "../../src/registry/index.js";
import { tempDir } from "../helpers/temp-dir.js";

it("reports a push and a pull from 0 bytes to the total", async () => {
  const size = 12 * 1024 * 1024 + 5;
  const file = join(await tempDir(), "bundle.tar.zst");
  await writeFile(file, randomBytes(size));
  const { digest } = await hashFile(file);
  const oci = openRegistry(
    `oci://${inject("registry").openHost}/t-${randomBytes(6).toString("hex")}`,
    { insecure: true },
  );
  const events: EnvpackEvent[] = [];
  const onEvent = (event: EnvpackEvent) => events.push(event);
  await oci.push(
    file,
    {
      digest,
      size,
      inputDigest: `sha256:${randomBytes(32).toString("hex")}`,
      meta: {},
    },
    { onEvent },
  );
  await oci.pull(digest, join(await tempDir(), "pulled.tar.zst"), { onEvent });
  for (const direction of ["push", "pull"] as const) {
    const seen = events.flatMap((e) =>
      e.type === "registry:transfer" && e.direction === direction ? [e] : [],
    );
    expect(seen[0]).toMatchObject({ digest, bytes: 0, total: size });
    expect(seen.at(-1)).toMatchObject({ digest, bytes: size, total: size });
    const bytes = seen.map((e) => e.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
  }
});
