// One table of hostile bundles (test/helpers/hostile-tar.ts) run against both unpackers:
// unpackBundle (what `envpack run` uses) and runtime/envpack-run (the sh runner on workers, run
// here as CI runs it, as root). Each row gives the same code and names the same entry in both;
// nothing lands outside the target, and a refused bundle leaves nothing in the target's parent.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import {
  ensureUnpacked,
  unpackBundle,
  writeBundleIndex,
} from "../../packer/index.js";
import type { Digest } from "../../src/core/index.js";
import {
  HOSTILE_CASES,
  type HostileArena,
  type HostileCase,
} from "../helpers/hostile-tar.js";
import { tempDir } from "../helpers/temp-dir.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");
/** Peak resident memory allowed to either unpacker, whatever the bundle. */
const MAX_RSS_BYTES = 256 * 1024 * 1024;

/** What an unpacker did with one bundle. */
interface Outcome {
  code: string;
  entry?: string;
  /** What the directory beside the target holds afterwards (escapes would land there). */
  outside: string[];
  /** Whether the environment appeared (the target's parent holds it and nothing else). */
  unpacked: boolean;
  /** Sizes of the files the row asks about, in the unpacked tree. */
  sizes?: Record<string, number>;
}

/** An unpacker under test: unpacks `file` (named by its digest) and reports what happened. */
type Unpacker = (options: {
  root: string;
  file: string;
  digest: Digest;
  row: HostileCase;
}) => Promise<Outcome>;

async function sha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest("hex");
}

async function sizesIn(
  dir: string,
  row: HostileCase,
): Promise<Record<string, number> | undefined> {
  if (row.sizes === undefined) return undefined;
  const sizes: Record<string, number> = {};
  for (const path of Object.keys(row.sizes))
    sizes[path] = (await stat(join(dir, path))).size;
  return sizes;
}

/** The code and entry an unpacker's error names. */
function codeOf(error: { code?: string; details?: { entry?: unknown } }): {
  code: string;
  entry?: string;
} {
  return {
    code: String(error.code),
    ...(error.details?.entry === undefined
      ? {}
      : { entry: String(error.details.entry) }),
  };
}

const withUnpackBundle: Unpacker = async ({ root, file, digest, row }) => {
  const work = join(root, "work");
  await mkdir(work);
  const dest = join(work, "dest");
  const outcome = await unpackBundle({
    file,
    dest,
    expectedDigest: digest,
  }).then(() => ({ code: "none" }), codeOf);
  const left = await readdir(work);
  const unpacked = left.length === 1 && left[0] === "dest";
  expect(unpacked || left.length === 0, `left in ${work}: ${left}`).toBe(true);
  return {
    ...outcome,
    outside: await readdir(join(root, "outside")),
    unpacked,
    ...(unpacked && row.sizes ? { sizes: await sizesIn(dest, row) } : {}),
  };
};

const withEnvpackRun: Unpacker = async ({ root, file, digest, row }) => {
  const cache = join(root, "cache");
  const rss = join(root, "rss");
  const result = await execa(
    "/usr/bin/time",
    ["-f", "%M", "-o", rss, "sh", RUNNER, file, "--", "true"],
    {
      env: { ENVPACK_WORKER_CACHE: cache },
      reject: false,
      stdin: "ignore",
    },
  );
  const stderr = String(result.stderr);
  const code = /envpack-run: (ENVPACK_[A-Z_]+): /.exec(stderr)?.[1];
  const entry = /: unsafe entry "(.*)": /.exec(stderr)?.[1];
  // Peak RSS of the runner and every process it waited for (zstd, tar, awk), in KiB.
  const peak = Number((await readFile(rss, "utf8")).trim().split("\n").pop());
  expect(peak * 1024).toBeLessThan(MAX_RSS_BYTES);
  if (code === undefined) expect(result.exitCode, `stderr: ${stderr}`).toBe(0);
  else expect(result.exitCode).toBe(4);
  const hex = digest.slice("sha256:".length);
  const left = await readdir(join(cache, "envs"));
  const unpacked = left.length === 1 && left[0] === hex;
  expect(unpacked || left.length === 0, `left in envs: ${left}`).toBe(true);
  return {
    code: code ?? "none",
    ...(entry === undefined ? {} : { entry }),
    outside: await readdir(join(root, "outside")),
    unpacked,
    ...(unpacked && row.sizes
      ? { sizes: await sizesIn(join(cache, "envs", hex), row) }
      : {}),
  };
};

/** A layered bundle (format 3) beside `file` whose one layer is `file`. */
async function indexOfOne(root: string, file: string, digest: Digest) {
  return writeBundleIndex(
    {
      format: 3,
      kind: "node",
      layers: [{ role: "app", digest, size: (await stat(file)).size }],
    },
    root,
  );
}

/**
 * What a layered bundle's unpack left in `envs`: its tree and its one layer when it succeeded
 * (the sh runner keeps the layer's checked entries beside it), nothing otherwise.
 */
async function layeredOutcome(
  envs: string,
  bundle: Digest,
  layer: Digest,
  found: { code: string; entry?: string | undefined },
  options: { root: string; row: HostileCase; entriesFile: boolean },
): Promise<Outcome> {
  const tree = join(envs, bundle.slice("sha256:".length));
  const unpacked = await stat(tree).then(
    () => true,
    () => false,
  );
  const hex = layer.slice("sha256:".length);
  const layers = (await readdir(join(envs, "layers"))).filter(
    (n) => !n.endsWith(".lock"),
  );
  expect(layers.sort(), "layers left").toEqual(
    unpacked ? (options.entriesFile ? [hex, `${hex}.entries`] : [hex]) : [],
  );
  expect(
    (await readdir(envs)).filter((n) => n !== "layers").length,
    "trees left",
  ).toBe(unpacked ? 1 : 0);
  return {
    code: found.code,
    ...(found.entry === undefined ? {} : { entry: found.entry }),
    outside: await readdir(join(options.root, "outside")),
    unpacked,
    ...(unpacked && options.row.sizes
      ? { sizes: await sizesIn(tree, options.row) }
      : {}),
  };
}

/**
 * The same archive as the layer of a layered bundle (format 3), unpacked by ensureUnpacked: the
 * layer is refused exactly as the bundle is, and neither a layer nor a tree is left behind.
 */
const asLayer: Unpacker = async ({ root, file, digest, row }) => {
  const envs = join(root, "envs");
  const index = await indexOfOne(root, file, digest);
  const found = await ensureUnpacked({
    file: index.path,
    digest: index.digest,
    envsDir: envs,
  }).then(() => ({ code: "none" }), codeOf);
  return layeredOutcome(envs, index.digest, digest, found, {
    root,
    row,
    entriesFile: false,
  });
};

/** The same, run by runtime/envpack-run. */
const asLayerOfEnvpackRun: Unpacker = async ({ root, file, digest, row }) => {
  const cache = join(root, "cache");
  const index = await indexOfOne(root, file, digest);
  const result = await execa("sh", [RUNNER, index.path, "--", "true"], {
    env: { ENVPACK_WORKER_CACHE: cache },
    reject: false,
    stdin: "ignore",
  });
  const stderr = String(result.stderr);
  const code = /envpack-run: (ENVPACK_[A-Z_]+): /.exec(stderr)?.[1];
  if (code === undefined) expect(result.exitCode, `stderr: ${stderr}`).toBe(0);
  else expect(result.exitCode).toBe(4);
  const found = {
    code: code ?? "none",
    entry: /: unsafe entry "(.*)": /.exec(stderr)?.[1],
  };
  return layeredOutcome(join(cache, "envs"), index.digest, digest, found, {
    root,
    row,
    entriesFile: true,
  });
};

const UNPACKERS: [string, Unpacker][] = [
  ["unpackBundle", withUnpackBundle],
  ["runtime/envpack-run", withEnvpackRun],
  ["a layer of a layered bundle", asLayer],
  ["a layer of a layered bundle, by runtime/envpack-run", asLayerOfEnvpackRun],
];

describe.each(UNPACKERS)("%s obeys the unpack contract", (_, unpacker) => {
  it.each(HOSTILE_CASES.map((row) => [row.name, row] as const))(
    "%s",
    async (_name, row) => {
      const root = await tempDir("envpack-hostile-");
      const arena: HostileArena = {
        scratch: join(root, "scratch"),
        outside: join(root, "outside"),
      };
      await mkdir(arena.scratch);
      await mkdir(arena.outside);
      const built = join(root, "built.tar.zst");
      await row.write(built, arena);
      const hex = row.wrongDigest
        ? createHash("sha256").update("another bundle").digest("hex")
        : await sha256(built);
      // envpack-run knows a bundle's digest from its file name.
      const file = join(root, `${hex}.tar.zst`);
      await rename(built, file);
      const outcome = await unpacker({
        root,
        file,
        digest: `sha256:${hex}` as Digest,
        row,
      });
      const entry =
        typeof row.entry === "function" ? row.entry(arena) : row.entry;
      expect(outcome).toEqual({
        code: row.code,
        ...(entry === undefined
          ? outcome.entry === undefined
            ? {}
            : { entry: outcome.entry }
          : { entry }),
        outside: [],
        unpacked: row.code === "none",
        ...(row.sizes ? { sizes: row.sizes } : {}),
      });
    },
  );
});
