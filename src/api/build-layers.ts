// A build's layers: each a cache hit by its own key or packed and put in the cache, then the
// index naming them, recorded under the bundle key. Only what changed is planned and packed.

import type { Digest, Manifest } from "../core/light.js";
import {
  LAYER_ROLES,
  LAYERED_BUNDLE_FORMAT,
  writeBundleIndex,
  type BundleEntry,
  type BundleWriter,
  type LayerRole,
} from "../../packer/index.js";
import { isMissingBlob, type LocalStore } from "../registry/light.js";
import { builtMeta, layerHit, type BuiltLayer } from "./bundle-cache.js";
import { planBundle, type PlanBundleOptions } from "./plan-bundle.js";

/** Options of {@link buildLayers}. */
export interface BuildLayersOptions {
  store: LocalStore;
  manifest: Manifest;
  /** Each layer's key (layerKeys) and the bundle's (bundleKey). */
  keys: Record<LayerRole, Digest>;
  bundleKey: Digest;
  /** What planBundle reads; `roles` is set here. */
  plan: Omit<PlanBundleOptions, "roles">;
  /** Opens a writer for a layer into the build's temp directory, with its zstd settings. */
  openWriter: (role: LayerRole) => BundleWriter;
  /**
   * Writers holding a whole layer each, packing since before the scan (a Conda prefix, or this
   * machine's node runtime): finished as they are unless the layer is cached; their layers are
   * not planned here.
   */
  prepacked?: ReadonlyMap<LayerRole, BundleWriter> | undefined;
  /** The build's temp directory (the index is written there before it enters the cache). */
  tmp: string;
}

/** The bundle {@link buildLayers} put in the cache. */
export interface LayeredBuild {
  digest: Digest;
  /** The index blob in the cache; its layers are blobs beside it. */
  path: string;
  /** Bytes of the index alone (what the bundle key's record names). */
  indexSize: number;
  layers: BuiltLayer[];
}

/**
 * The roles a bundle of these options can have: a conda-pack prefix is one packages layer (no
 * runtime split), so its build never waits for a runtime layer that cannot exist.
 */
export function rolesOf(engine: PlanBundleOptions["engine"]): LayerRole[] {
  return engine === "conda-pack"
    ? LAYER_ROLES.filter((r) => r !== "runtime")
    : [...LAYER_ROLES];
}

/**
 * The cache's records of a build are not flushed to disk: the blobs they name are (a writer's
 * layer, the index), so a crash can only lose a record (a rebuild), never point a key at other
 * bytes; one flush fewer on the way from the last packed byte to the bundle.
 */
const NOT_FLUSHED = { fsync: false } as const;

/**
 * How many times a build writes its bundle when a concurrent `cache gc` removes blobs it wrote
 * or reused before the bundle key's record names them all.
 */
const ATTEMPTS = 3;

/**
 * Writes the bundle of a manifest into the cache: layers found under their keys are reused;
 * the others are planned (their work alone), packed at once and recorded under their keys; then
 * the index is written and recorded under the bundle key. Every layer has the same bytes
 * whether it was packed alone or in a cold build (the runtime always as two batches: its leading
 * entries, then the rest). A blob that a concurrent `cache gc` removed meanwhile (the store then
 * refuses to record it, or the finished bundle lacks it) is packed again, the whole bundle
 * written again (prepacked writers are not reused), up to {@link ATTEMPTS} times.
 * @throws as planBundle and the writers; nothing of a failed build is recorded
 */
export async function buildLayers(
  options: BuildLayersOptions,
): Promise<LayeredBuild> {
  for (let attempt = 1; ; attempt++) {
    const last = attempt === ATTEMPTS;
    const prepacked = attempt === 1 ? options.prepacked : undefined;
    let built: LayeredBuild;
    try {
      built = await buildLayersOnce({ ...options, prepacked });
    } catch (error) {
      if (last || !isMissingBlob(error)) throw error;
      continue;
    }
    const missing = await missingBlobs(options.store, built);
    if (missing.length === 0) return built;
    if (last)
      throw new Error(
        `the cache lost ${missing.join(", ")} while the bundle ${built.digest} was written, ${ATTEMPTS} times: is a \`cache gc\` running in a loop?`,
      );
  }
}

/** The blobs of a bundle built into the store that are not there (whole) any more. */
async function missingBlobs(
  store: LocalStore,
  built: LayeredBuild,
): Promise<Digest[]> {
  const blobs = [
    { digest: built.digest, size: built.indexSize },
    ...built.layers,
  ];
  const sizes = await Promise.all(blobs.map((b) => store.sizeOf(b.digest)));
  return blobs.filter((b, i) => sizes[i] !== b.size).map((b) => b.digest);
}

async function buildLayersOnce(
  options: BuildLayersOptions,
): Promise<LayeredBuild> {
  const { store, manifest, keys } = options;
  const roles = rolesOf(options.plan.engine);
  const hits = new Map<LayerRole, { digest: Digest; size: number }>();
  await Promise.all(
    roles.map(async (role) => {
      const hit = await layerHit(store, keys[role]);
      if (hit !== null) hits.set(role, hit);
    }),
  );
  const missing = new Set(roles.filter((r) => !hits.has(r)));
  const built = new Map<LayerRole, { digest: Digest; size: number }>();
  const preStartedOf = (role: LayerRole) => options.prepacked?.get(role);
  // The packing workers boot while the entries are planned.
  const writers = new Map<LayerRole, BundleWriter>(
    [...missing].map((role) => [
      role,
      preStartedOf(role) ?? options.openWriter(role),
    ]),
  );
  const planned = new Set(
    [...missing].filter((r) => options.prepacked?.has(r) !== true),
  );
  let plan: Awaited<ReturnType<typeof planBundle>> | undefined;
  try {
    // A prepacked layer the cache holds after all stops now, not at the end of the build.
    await Promise.all(
      [...(options.prepacked ?? [])]
        .filter(([role]) => hits.has(role))
        .map(([, writer]) => writer.abort()),
    );
    plan =
      planned.size === 0
        ? undefined
        : await planBundle(manifest, { ...options.plan, roles: planned });
    const byRole = (list: readonly BundleEntry[], role: LayerRole) =>
      list.filter((e) => (e.layer ?? "app") === role);
    const finishing = [...missing].map(async (role) => {
      const leading = byRole(plan?.leading ?? [], role);
      const rest = byRole(plan?.entries ?? [], role);
      const preStarted = preStartedOf(role);
      const writer = writers.get(role) as BundleWriter;
      if (preStarted === undefined && leading.length + rest.length === 0) {
        await writer.abort();
        return;
      }
      if (preStarted === undefined && leading.length > 0) writer.add(leading);
      if (rest.length > 0) writer.add(rest);
      const written = await writer.finish();
      built.set(role, { digest: written.digest, size: written.size });
      return { role, written };
    });
    // Each layer enters the store and its key's record while the index is written and stored:
    // each step waits on a flush to disk, so the two chains overlap instead of adding up.
    const storing = finishing.map(async (finished) => {
      const done = await finished;
      if (done === undefined) return;
      const { role, written } = done;
      // The writer hashed and flushed the very bytes it wrote: the store links them in without
      // reading or flushing them again.
      const put = await store.putFile(written.path, written.digest, {
        hashedByWriter: true,
        synced: true,
      });
      await store.record(
        {
          key: keys[role],
          inputDigest: manifest.inputDigest as Digest,
          digest: put.digest,
          size: put.size,
          usedAt: Date.now(),
          meta: builtMeta(manifest.kind, role),
        },
        NOT_FLUSHED,
      );
    });
    const indexing = Promise.all(finishing).then(async () => {
      const layers: BuiltLayer[] = [];
      for (const role of roles) {
        const hit = hits.get(role);
        const made = built.get(role);
        if (hit !== undefined) layers.push({ role, ...hit, cached: true });
        else if (made !== undefined)
          layers.push({ role, ...made, cached: false });
      }
      const written = await writeBundleIndex(
        {
          format: LAYERED_BUNDLE_FORMAT,
          kind: manifest.kind,
          layers: layers.map(({ role, digest, size }) => ({
            role,
            digest,
            size,
          })),
        },
        options.tmp,
        "",
      );
      const put = await store.putFile(written.path, written.digest, {
        hashedByWriter: true,
        synced: true,
      });
      return { put, layers };
    });
    // Every step is over (stored, or stopped) before the build returns or fails: no store write
    // of a layer that finished meanwhile happens after it. The first failure is the build's; the
    // other layers stop rather than finish.
    let failure: { error: unknown } | undefined;
    const settle = <T>(step: Promise<T>): Promise<T | undefined> =>
      step.catch(async (error: unknown) => {
        failure ??= { error };
        await Promise.all([...writers.values()].map((w) => w.abort()));
        return undefined;
      });
    const [indexed] = await Promise.all([
      settle(indexing),
      ...storing.map(settle),
    ]);
    if (failure !== undefined || indexed === undefined) throw failure?.error;
    const { put, layers } = indexed;
    // Recorded last: a bundle key names an index whose layers are all in the store.
    await store.record(
      {
        key: options.bundleKey,
        inputDigest: manifest.inputDigest as Digest,
        digest: put.digest,
        size: put.size,
        usedAt: Date.now(),
        meta: builtMeta(manifest.kind),
      },
      NOT_FLUSHED,
    );
    return {
      digest: put.digest,
      path: put.path,
      indexSize: put.size,
      layers,
    };
  } finally {
    await Promise.all([...writers.values()].map((w) => w.abort()));
    await plan?.dispose();
  }
}
