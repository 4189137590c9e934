// A layered bundle's index: the small canonical document naming its ordered layers, each a
// deterministic tar.zst by its own sha256. The index's own sha256 is the bundle's digest.

import {
  IntegrityError,
  canonicalJson,
  isDigest,
  type Digest,
} from "../../src/core/light.js";

/** The bundle format a layered bundle's index carries. */
export const LAYERED_BUNDLE_FORMAT = 3;

/**
 * What a layer holds, in the order layers are assembled: the interpreter (Node's binary and
 * launchers; Conda's python package), the packages (node_modules; the rest of the Conda
 * prefix with its relocation record) and the app's own files with its launcher and metadata.
 */
export const LAYER_ROLES = ["runtime", "packages", "app"] as const;
export type LayerRole = (typeof LAYER_ROLES)[number];

/** One layer of a bundle. */
export interface LayerRef {
  role: LayerRole;
  /** sha256 of the layer's `.tar.zst` bytes. */
  digest: Digest;
  /** Its size in bytes. */
  size: number;
}

/** `<sha256>` of a layered bundle: the index, as stored. */
export interface BundleIndex {
  format: typeof LAYERED_BUNDLE_FORMAT;
  kind: "node" | "conda";
  /** In assembly order, one per role at most. */
  layers: LayerRef[];
}

/** Whether a parsed JSON value is a format-3 index (read on a cache hit, so without zod). */
function isBundleIndex(json: unknown): json is BundleIndex {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    return false;
  const index = json as Record<string, unknown>;
  const layers = index["layers"];
  return (
    hasOnlyKeys(index, ["format", "kind", "layers"]) &&
    index["format"] === LAYERED_BUNDLE_FORMAT &&
    (index["kind"] === "node" || index["kind"] === "conda") &&
    Array.isArray(layers) &&
    layers.length > 0 &&
    layers.every(isLayerRef)
  );
}

function isLayerRef(json: unknown): json is LayerRef {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    return false;
  const ref = json as Record<string, unknown>;
  const size = ref["size"];
  return (
    hasOnlyKeys(ref, ["role", "digest", "size"]) &&
    (LAYER_ROLES as readonly unknown[]).includes(ref["role"]) &&
    typeof ref["digest"] === "string" &&
    isDigest(ref["digest"]) &&
    typeof size === "number" &&
    Number.isSafeInteger(size) &&
    size >= 0
  );
}

function hasOnlyKeys(
  object: Record<string, unknown>,
  keys: readonly string[],
): boolean {
  const own = Object.keys(object);
  return own.length === keys.length && own.every((k) => keys.includes(k));
}

/**
 * The index's bytes: canonical JSON (sorted keys, no spaces) and a newline, so the same layers
 * always give the same bundle digest. Layers are put in role order.
 */
export function encodeBundleIndex(index: BundleIndex): Uint8Array {
  const order = (role: LayerRole) => LAYER_ROLES.indexOf(role);
  const layers = [...index.layers].sort(
    (a, b) => order(a.role) - order(b.role),
  );
  return Buffer.from(`${canonicalJson({ ...index, layers })}\n`);
}

/** Whether bytes start like an index (`{`) rather than a zstd frame: how format 2 and 3 are told apart. */
export function looksLikeBundleIndex(head: Uint8Array): boolean {
  return head[0] === 0x7b;
}

/**
 * Parses an index (already verified against its digest by the caller).
 * @throws IntegrityError ENVPACK_INTEGRITY_CORRUPT_ARCHIVE when it is not a format-3 index with
 *   layers in role order, each role at most once
 */
export function parseBundleIndex(bytes: Uint8Array, name: string): BundleIndex {
  const json = parseJson(bytes);
  const valid = isBundleIndex(json);
  const roles = valid ? json.layers.map((l) => l.role) : [];
  const ordered = roles.every(
    (role, i) =>
      i === 0 ||
      LAYER_ROLES.indexOf(role) >
        LAYER_ROLES.indexOf(roles[i - 1] as LayerRole),
  );
  if (!valid || !ordered) {
    throw new IntegrityError(
      "ENVPACK_INTEGRITY_CORRUPT_ARCHIVE",
      `${name} is not a bundle index of format ${LAYERED_BUNDLE_FORMAT}`,
      {
        hint: "Build the bundle again with this envpack; fetch it again if it came from elsewhere.",
        details: { file: name },
      },
    );
  }
  return json;
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return undefined;
  }
}
