// The OCI image manifest of a bundle: what envpack writes (one manifest per bundle; a layered
// bundle's index as its config and one OCI layer per envpack layer) and what a lookup reads back.

import { digestOf, isDigest, type Digest } from "../core/index.js";
import type { PushEntry, RegistryEntry, RegistryLayer } from "./registry.js";

/** The manifest's `artifactType`: what the artifact is. */
export const BUNDLE_ARTIFACT_TYPE = "application/vnd.envpack.bundle.v1";
/** A single-blob bundle (format 2): its one layer is the bundle file itself. */
export const BUNDLE_LAYER_TYPE = "application/vnd.envpack.bundle.v1.tar+zstd";
/** A layered bundle (format 3): its index is the manifest's config... */
export const BUNDLE_INDEX_TYPE = "application/vnd.envpack.bundle.index.v1+json";
/** ...and each of its layers an OCI layer, in assembly order. */
export const LAYER_TYPE = "application/vnd.envpack.layer.v1.tar+zstd";
export const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
/** The OCI empty descriptor, the config of a single-blob bundle: it carries no image config. */
export const EMPTY_CONFIG = {
  mediaType: "application/vnd.oci.empty.v1+json",
  content: Buffer.from("{}"),
  digest: digestOf(Buffer.from("{}")),
};
const INPUT_ANNOTATION = "dev.envpack.input-digest";
const ROLE_ANNOTATION = "dev.envpack.layer.role";
const META_PREFIX = "dev.envpack.meta.";

/** The tag under which a bundle is found by its input digest. */
export function inputTag(inputDigest: Digest): string {
  return `input-${inputDigest.slice("sha256:".length)}`;
}

/** The manifest naming a bundle's blobs under its input digest (all blobs pushed before it). */
export function bundleManifest(entry: PushEntry): string {
  const layered = entry.layers !== undefined;
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    artifactType: BUNDLE_ARTIFACT_TYPE,
    config: layered
      ? { mediaType: BUNDLE_INDEX_TYPE, digest: entry.digest, size: entry.size }
      : {
          mediaType: EMPTY_CONFIG.mediaType,
          digest: EMPTY_CONFIG.digest,
          size: EMPTY_CONFIG.content.length,
        },
    layers: layered
      ? (entry.layers ?? []).map((layer) => ({
          mediaType: LAYER_TYPE,
          digest: layer.digest,
          size: layer.size,
          annotations: { [ROLE_ANNOTATION]: layer.role },
        }))
      : [
          {
            mediaType: BUNDLE_LAYER_TYPE,
            digest: entry.digest,
            size: entry.size,
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
}

/** A descriptor read from the network: any JSON at all may arrive here. */
function descriptorOf(
  value: unknown,
  mediaType: string,
): { digest: Digest; size: number; role: string } | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const d = value as {
    mediaType?: unknown;
    digest?: unknown;
    size?: unknown;
    annotations?: unknown;
  };
  if (
    d.mediaType !== mediaType ||
    typeof d.digest !== "string" ||
    !isDigest(d.digest) ||
    typeof d.size !== "number" ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0
  )
    return undefined;
  const annotations =
    d.annotations !== null && typeof d.annotations === "object"
      ? (d.annotations as Record<string, unknown>)
      : {};
  const role = annotations[ROLE_ANNOTATION];
  return {
    digest: d.digest,
    size: d.size,
    role: typeof role === "string" ? role : "",
  };
}

/** The registry entry a manifest describes, or null when it is not an envpack bundle's. */
export function entryOf(
  json: unknown,
  inputDigest: Digest,
): RegistryEntry | null {
  if (json === null || typeof json !== "object") return null;
  const manifest = json as {
    artifactType?: unknown;
    config?: unknown;
    layers?: unknown;
    annotations?: Record<string, unknown> | null;
  };
  if (
    manifest.artifactType !== BUNDLE_ARTIFACT_TYPE ||
    !Array.isArray(manifest.layers) ||
    manifest.annotations?.[INPUT_ANNOTATION] !== inputDigest
  )
    return null;
  const listed = manifest.layers as unknown[];
  const meta: Record<string, string> = {};
  for (const [key, value] of Object.entries(manifest.annotations ?? {}))
    if (key.startsWith(META_PREFIX) && typeof value === "string")
      meta[key.slice(META_PREFIX.length)] = value;
  const index = descriptorOf(manifest.config, BUNDLE_INDEX_TYPE);
  if (index !== undefined) {
    const layers: RegistryLayer[] = [];
    for (const value of listed) {
      const layer = descriptorOf(value, LAYER_TYPE);
      if (layer === undefined) return null;
      layers.push(layer);
    }
    if (layers.length === 0) return null;
    return {
      digest: index.digest,
      size: index.size,
      inputDigest,
      meta,
      layers,
    };
  }
  const blob = listed
    .map((value) => descriptorOf(value, BUNDLE_LAYER_TYPE))
    .find((d) => d !== undefined);
  if (blob === undefined) return null;
  return { digest: blob.digest, size: blob.size, inputDigest, meta };
}
