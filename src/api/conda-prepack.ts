// A Conda prefix packed while the app is scanned: when the interpreter's layer is not cached, the
// runtime and packages layers (the whole prefix, the bulk of the bytes) do not depend on what the
// app imports, so they are planned and packed from the model the scan reads meanwhile.

import { extname } from "node:path";
import type { Digest, EnvpackEvent, Manifest, OnEvent } from "../core/light.js";
import {
  planCondaBundle,
  type BundleEntry,
  type BundleWriter,
  type LayerRole,
  type WrittenBundle,
} from "../../packer/index.js";
import type { LocalStore } from "../registry/light.js";
import {
  environmentDigest,
  environmentFiles,
  interpreterPackage,
  type CondaEnv,
  type CondaEnvReader,
} from "../conda/index.js";
import { layerHit } from "./bundle-cache.js";
import { condaRuntimeKey, type LayerKeyOptions } from "./layer-keys.js";

/** The layers a prepack packs: the prefix, planned whole. */
const ROLES = ["runtime", "packages"] as const satisfies LayerRole[];

/** The build options that decide whether a build prepacks its prefix. */
export interface PrepackGateOptions {
  entries?: string[] | undefined;
  manifest?: string | undefined;
  env?: string | undefined;
  node?: string | undefined;
  platform?: string | undefined;
  prune?: boolean | undefined;
  engine?: "builtin" | "conda-pack" | undefined;
  trace?: string[] | undefined;
  registry?: unknown;
}

/**
 * Whether a build's prefix layers are known before its scan: Python entries with a prefix, the
 * builtin engine and nothing pruned (the prefix is packed whole, whatever the app imports). Not
 * with a manifest file, a registry (a pull may need no packing) or a trace (it runs the app first).
 */
export function prepacksConda(options: PrepackGateOptions): boolean {
  const entries = options.entries ?? [];
  return (
    entries.length > 0 &&
    entries.every((e) => extname(e) === ".py") &&
    options.env !== undefined &&
    options.env !== "" &&
    options.manifest === undefined &&
    options.registry === undefined &&
    options.trace === undefined &&
    options.node === undefined &&
    options.platform === undefined &&
    options.prune !== true &&
    (options.engine ?? "builtin") === "builtin"
  );
}

/** Options of {@link CondaPrepack}. */
export interface CondaPrepackOptions {
  store: LocalStore;
  /** The prefix, resolved as the scan resolves it. */
  prefix: string;
  /** The builder identity and the options layer keys read. */
  builder: string;
  keyOptions: LayerKeyOptions;
  /** The build's shared reader: the scan and the plan decide from one read. */
  readEnv: CondaEnvReader;
  /** Opens a layer writer on the build's pack thread. */
  openWriter: (role: LayerRole) => BundleWriter;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

type Outcome<T> = { value: T } | { error: unknown };

/**
 * The runtime and packages layers of a Conda prefix, packing from the start of a build. The
 * plan's warnings are held back and given once a layer is used; a failure (of the plan or the
 * packing) is the build's only when it uses a layer, as a build planning after its scan would
 * have met it. {@link dispose} ends whatever was not used.
 */
export class CondaPrepack {
  readonly #options: CondaPrepackOptions;
  readonly #stop = new AbortController();
  readonly #held: EnvpackEvent[] = [];
  #given = false;
  readonly #started: Promise<Outcome<Map<LayerRole, BundleWriter>>>;
  /** Settles once the runtime layer's entries are handed over, or none will be. */
  readonly #runtimeHandedOver: Promise<void>;
  #handOver!: () => void;

  constructor(options: CondaPrepackOptions) {
    this.#options = options;
    this.#runtimeHandedOver = new Promise((resolve) => {
      this.#handOver = resolve;
    });
    this.#started = settled(this.#start());
    void this.#started.then((started) => {
      if ("error" in started) this.#handOver();
    });
  }

  /**
   * Resolves once the runtime layer's entries are with its pack thread, or once none will be (the
   * cache holds the prefix's layers, or reading or planning it failed: that failure is the
   * build's when it uses a layer). Never rejects. A build scans after it: the scan's module loading
   * and interpreter probe then run while the runtime layer packs, not before its first byte.
   */
  runtimeHandedOver(): Promise<void> {
    return this.#runtimeHandedOver;
  }

  /**
   * The writers of the layers it packs, each holding (or about to hold) its whole layer: empty
   * when the cache has the interpreter's layer (the prefix was packed before).
   * @throws what reading the prefix or the cache threw
   */
  async writers(): Promise<ReadonlyMap<LayerRole, BundleWriter>> {
    const started = await this.#started;
    if ("error" in started) throw started.error;
    return started.value;
  }

  /** Stops the plan and every writer not finished, and resolves once nothing of them is left. */
  async dispose(): Promise<void> {
    this.#stop.abort();
    const started = await this.#started;
    if ("value" in started)
      await Promise.all([...started.value.values()].map((w) => w.abort()));
  }

  async #start(): Promise<Map<LayerRole, BundleWriter>> {
    const { readEnv, prefix, signal, store } = this.#options;
    const open = () =>
      new Map(ROLES.map((role) => [role, this.#options.openWriter(role)]));
    // An empty cache holds no layer: the writers (and the build's pack thread, whose boot is the
    // longer wait) start beside the read of the prefix rather than after it.
    const opened = (await isEmpty(store)) ? open() : undefined;
    const abortOpened = () =>
      Promise.all([...(opened?.values() ?? [])].map((w) => w.abort()));
    let hit: Awaited<ReturnType<typeof layerHit>>;
    let env: CondaEnv;
    try {
      env = await readEnv(prefix, signal);
      const key = prefixRuntimeKey(
        env,
        this.#options.builder,
        this.#options.keyOptions,
      );
      hit = await layerHit(store, key);
    } catch (error) {
      await abortOpened();
      throw error;
    }
    if (hit !== null) {
      // Another build cached it meanwhile.
      await abortOpened();
      this.#handOver();
      return new Map();
    }
    const inner = opened ?? open();
    const writerOf = (role: (typeof ROLES)[number]) =>
      inner.get(role) as BundleWriter;
    /** Writers given up (a runtime draft that did not hold): each settles before the build ends. */
    const retired: Promise<void>[] = [];
    // Each layer's frame ends as soon as its entries are handed over: the packages layer then
    // compresses with the runtime layer's zstd context (and threads) rather than a second set
    // beside it. Held as data until the build uses the layer.
    const written = new Map<LayerRole, Promise<Outcome<WrittenBundle>>>();
    const finish = (role: (typeof ROLES)[number]) => {
      written.set(role, settled(writerOf(role).finish()));
      if (role === "runtime") this.#handOver();
    };
    // python's entries pack from the plan's draft of them; the plan then gives that draft back
    // (it holds: the frame ends) or the runtime layer's entries (packed afresh).
    let draft: BundleEntry[] | undefined;
    const add = (role: (typeof ROLES)[number], entries: BundleEntry[]) => {
      if (role === "runtime" && draft !== undefined) {
        if (entries === draft) {
          finish(role);
          return;
        }
        retired.push(writerOf(role).abort());
        inner.set(role, this.#options.openWriter(role));
      }
      writerOf(role).add(entries);
      finish(role);
    };
    // The runtime layer packs as soon as it is planned, while the rest of the prefix is.
    const planned = settled(
      planCondaBundle({
        prefix: env.prefix,
        readEnv,
        onWarn: (warning) => this.#held.push(warning),
        onRuntimeDraft: (entries) => {
          draft = entries;
          writerOf("runtime").add(entries);
          this.#handOver();
        },
        onRuntime: (entries) => add("runtime", entries),
        signal:
          signal === undefined
            ? this.#stop.signal
            : AbortSignal.any([signal, this.#stop.signal]),
      }).then((plan) =>
        add(
          "packages",
          plan.entries.filter((e) => (e.layer ?? "packages") === "packages"),
        ),
      ),
    );
    // A plan that failed (or gave the runtime layer with the rest) has handed over all it will.
    void planned.then(() => this.#handOver());
    return new Map(
      ROLES.map((role) => [
        role,
        {
          add: () => {
            throw new Error(`a prepacked ${role} layer takes no more entries`);
          },
          finish: async () => {
            const plan = await planned;
            this.#give();
            await Promise.all(retired);
            if ("error" in plan) throw plan.error;
            const done = await written.get(role);
            if (done === undefined) return writerOf(role).finish();
            if ("error" in done) throw done.error;
            return done.value;
          },
          abort: async () => {
            this.#stop.abort();
            await planned;
            await Promise.all([...retired, writerOf(role).abort()]);
          },
        },
      ]),
    );
  }

  /** The plan's warnings, given once: when the build first uses a layer. */
  #give(): void {
    if (this.#given) return;
    this.#given = true;
    for (const event of this.#held) this.#options.onEvent?.(event);
  }
}

/**
 * The runtime key of a Conda bundle of `env`, from the prefix alone: equal to the one
 * `layerKeys` gives the manifest of any app scanned against it.
 */
export function prefixRuntimeKey(
  env: CondaEnv,
  builder: string,
  options: LayerKeyOptions,
): Digest {
  return condaRuntimeKey(
    {
      runtime: {
        name: "python",
        version: env.python.record.version,
        platform: env.platform,
      },
      env: { prefix: env.prefix, sitePackages: env.sitePackages },
      packages: [interpreterPackage(env)],
    },
    builder,
    options,
  );
}

/**
 * What a Conda bundle that packs its whole prefix (not pruned) is keyed by beyond its manifest:
 * the prefix's identity (the bundle key option `environment`), and the files a fingerprint
 * stats to vouch for it. Nothing for other bundles.
 */
export async function wholePrefixIdentity(
  manifest: Manifest,
  options: { prune?: boolean | undefined },
  readEnv: CondaEnvReader,
): Promise<{ environment?: Digest; files: string[] }> {
  if (
    manifest.kind !== "conda" ||
    options.prune === true ||
    manifest.env === undefined
  )
    return { files: [] };
  const env = await readEnv(manifest.env.prefix);
  return { environment: environmentDigest(env), files: environmentFiles(env) };
}

/**
 * Whether the store is known to hold no record. One that cannot be listed is not known empty: the
 * lookup after it meets (and reports) what is wrong.
 */
async function isEmpty(store: LocalStore): Promise<boolean> {
  try {
    return await store.holdsNoRecords();
  } catch (error) {
    if (error instanceof Error && "code" in error) return false;
    throw error;
  }
}

/** A promise's outcome as data: held until used, never an unhandled rejection. */
function settled<T>(work: Promise<T>): Promise<Outcome<T>> {
  return work.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}
