// bench:layers' registry section: the bytes a push and a pull of version 2 move through the
// loopback OCI registry (Debian's docker-registry) when the registry, or the pulling machine,
// already holds version 1 — against the whole bundle (target: at most 1% of it, plus the index).

import { dirname, join } from "node:path";
import { pull, push } from "../../src/api/index.js";
import { startRegistry } from "./registry-server.js";
import { megabytes, type Row } from "./table.js";

/** What moves after an edit, beyond the new index: at most this share of the bundle. */
export const REGISTRY_TARGET = 0.01;

/** A build's result as bench:layers holds it: its index in the build cache, and its layers. */
export interface BuiltBundle {
  digest: string;
  /** The index, a blob of the build cache (`<cache>/blobs/sha256/<hex>`). */
  path: string;
  /** Index and layers. */
  size: number;
  layers: Array<{ role: string; digest: string; size: number }>;
}

/** The figures of one fixture. */
export interface RegistryBytes {
  bundleBytes: number;
  indexBytes: number;
  /** Blob bytes uploaded by the push of version 2 (HTTP framing not counted). */
  pushedBytes: number;
  /** Blob bytes downloaded by the pull of version 2. */
  pulledBytes: number;
  /** (bytes − index) / bundle. */
  pushedRatio: number;
  pulledRatio: number;
  met: boolean;
}

/**
 * Pushes version 1 then version 2 from the build cache to a fresh registry, and pulls them in
 * that order into an empty cache; measures what version 2 moved each way.
 */
export async function measureRegistryBytes(
  before: BuiltBundle,
  after: BuiltBundle,
  work: string,
): Promise<RegistryBytes> {
  const server = await startRegistry();
  try {
    const registry = {
      url: `oci://${server.host}/bench-layers`,
      insecure: true,
    };
    const cacheDir = dirname(dirname(dirname(after.path)));
    await push({ digest: before.digest, registry, cacheDir });
    const pushed = await push({ digest: after.digest, registry, cacheDir });
    const machine = join(work, "registry-machine");
    await pull({ digest: before.digest, registry, cacheDir: machine });
    const pulled = await pull({
      digest: after.digest,
      registry,
      cacheDir: machine,
    });
    const indexBytes =
      after.size - after.layers.reduce((sum, l) => sum + l.size, 0);
    const share = (bytes: number) => (bytes - indexBytes) / after.size;
    const pushedRatio = share(pushed.sentBytes);
    const pulledRatio = share(pulled.transferred);
    return {
      bundleBytes: after.size,
      indexBytes,
      pushedBytes: pushed.sentBytes,
      pulledBytes: pulled.transferred,
      pushedRatio,
      pulledRatio,
      met: pushedRatio <= REGISTRY_TARGET && pulledRatio <= REGISTRY_TARGET,
    };
  } finally {
    await server.stop();
  }
}

/** The section's rows (fixture, figure, value) for one fixture's versions 1 and 2. */
export async function registryBytesSection(context: {
  target: { name: string };
  before: BuiltBundle;
  after: BuiltBundle;
  work: string;
}): Promise<Row[]> {
  const bytes = await measureRegistryBytes(
    context.before,
    context.after,
    context.work,
  );
  const row = (what: string, moved: number, ratio: number): Row => [
    context.target.name,
    what,
    `${moved} B of ${megabytes(bytes.bundleBytes)}: ${(ratio * 100).toFixed(3)}% + index ${bytes.indexBytes} B (target ≤ ${REGISTRY_TARGET * 100}% + index: ${ratio <= REGISTRY_TARGET ? "yes" : "NO"})`,
  ];
  return [
    row(
      "registry push of v2, holding v1",
      bytes.pushedBytes,
      bytes.pushedRatio,
    ),
    row(
      "registry pull of v2, holding v1",
      bytes.pulledBytes,
      bytes.pulledRatio,
    ),
  ];
}
