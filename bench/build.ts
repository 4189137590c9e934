// `npm run bench:build`: envpack build / cache hit / unpack against `tar | zstd -3 -T2` on the same files,
// for the large Conda fixture and the realworld Node app. A bundle is layered (format 3): its
// size is the index and every layer, its unpack every layer unpacked and the tree assembled.

import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { build, scan, type BuildResult } from "../src/api/index.js";
import { ensureUnpacked, removeTree } from "../packer/index.js";
import { requireTools, runPipeline, shellQuote } from "./lib/shell.js";
import { alternate, median, ratio, repeat, timed } from "./lib/stats.js";
import {
  FIGURE_HEADER,
  formatTable,
  megabytes,
  metText,
  ratioText,
  secs,
  wantsJson,
} from "./lib/table.js";
import {
  buildOptionsOf,
  log,
  withBenchFixtures,
  type BenchTarget,
} from "./lib/targets.js";

const RUNS = 3;
/**
 * Unpacks are short and the peer's time on this file system swings 2–5× from run to run: more
 * pairs for a steadier median.
 */
const UNPACK_PAIRS = 7;
const ZSTD_LEVEL = 3;
const ZSTD_THREADS = 2;

/** One comparison: envpack's figure, the peer's, their ratio and the target it is held to. */
interface Figure {
  envpack: number;
  peer: number;
  ratio: number | null;
  target: number;
  met: boolean;
}

interface TargetResult {
  name: string;
  bundle: { digest: string; size: number; entries: number; bytes: number };
  scanSeconds: number;
  coldBuild: Figure & { seconds: number[]; peerSeconds: number[] };
  cacheHit: Figure & { seconds: number[] };
  /** Wall time as the figure; CPU time (this process's and the peer's processes') beside it. */
  unpack: Figure & {
    seconds: number[];
    peerSeconds: number[];
    cpu: Figure;
    cpuSeconds: number[];
    peerCpuSeconds: number[];
  };
  size: Figure;
}

function figure(
  envpack: number,
  peer: number,
  target: number,
  met: (r: number) => boolean,
): Figure {
  const r = ratio(envpack, peer);
  return { envpack, peer, ratio: r, target, met: r !== null && met(r) };
}

/** Regular files and their total size under `dir` (symlinks count as entries, not bytes). */
async function treeSize(
  dir: string,
): Promise<{ entries: number; bytes: number }> {
  let entries = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, {
    withFileTypes: true,
    recursive: true,
  })) {
    entries++;
    if (entry.isFile())
      bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return { entries, bytes };
}

/**
 * Benches one target. The unpacked trees are pushed onto `unpacked` and left for the caller to
 * remove once every target is done: removing thousands of files slows the file creation that
 * follows (see below), which would load the next target's unpacks.
 */
async function benchTarget(
  target: BenchTarget,
  work: string,
  unpacked: string[],
): Promise<TargetResult> {
  const base = join(work, target.name);
  await mkdir(base, { recursive: true });
  const cacheFor = (run: number) => join(base, `cache-${run}`);
  const blobIn = (cacheDir: string, digest: string) =>
    join(cacheDir, "blobs", "sha256", digest.slice("sha256:".length));
  // Seconds from the start of the last build to its scan:done event: the scan's share of a cold build.
  let scanSeconds = 0;
  const buildIn = (cacheDir: string) => {
    const started = performance.now();
    return build({
      ...buildOptionsOf(target, cacheDir),
      onEvent: (event) => {
        if (event.type === "scan:done")
          scanSeconds = (performance.now() - started) / 1000;
      },
    });
  };

  // Cold builds and the peer alternate, build first, each after a `sync` (untimed) so neither
  // side pays for the other's writeback: run after run this machine's speed drifts by a third,
  // which would load whichever side ran in a slower stretch had all builds come before all peers.
  // The peer needs the first build's content, so its tree is made between the first pair's halves.
  const tree = join(base, "tree");
  const peerArchive = join(base, "peer.tar.zst");
  const cacheDir = cacheFor(RUNS - 1);
  let built: BuildResult | undefined;
  const coldSeconds: number[] = [];
  const peerSeconds: number[] = [];
  log(
    `bench:build: ${target.name}: ${RUNS} cold builds alternated with tar | zstd -${ZSTD_LEVEL} -T${ZSTD_THREADS}`,
  );
  for (let run = 0; run < RUNS; run++) {
    if (run > 0) await rm(cacheFor(run - 1), { recursive: true, force: true });
    await runPipeline("sync");
    const cold = await timed(() => buildIn(cacheFor(run)));
    if (cold.value.cached)
      throw new Error(`${target.name}: a cold build hit the cache`);
    coldSeconds.push(cold.seconds);
    built = cold.value;
    // The peer's file set: the bundle's own content, its layers unpacked once into one tree.
    if (run === 0)
      for (const layer of built.layers)
        await runPipeline(
          `mkdir -p ${shellQuote(tree)} && zstd -dc ${shellQuote(blobIn(cacheFor(0), layer.digest))} | tar -xf - -C ${shellQuote(tree)}`,
        );
    await runPipeline("sync");
    peerSeconds.push(
      (
        await timed(() =>
          runPipeline(
            `tar -cf - -C ${shellQuote(tree)} . | zstd -q -f -${ZSTD_LEVEL} -T${ZSTD_THREADS} -o ${shellQuote(peerArchive)}`,
          ),
        )
      ).seconds,
    );
  }
  if (built === undefined) throw new Error("bench:build: no cold build ran");
  const coldMedian = median(coldSeconds);
  const peerMedian = median(peerSeconds);

  log(`bench:build: ${target.name}: ${RUNS} cache-hit rebuilds`);
  const hits = await repeat(RUNS, async () => {
    const again = await buildIn(cacheDir);
    if (!again.cached || again.digest !== built.digest)
      throw new Error(`${target.name}: the rebuild was not a cache hit`);
    return again;
  });
  const content = await treeSize(tree);
  const peerSize = (await stat(peerArchive)).size;

  // Every timed unpack writes a directory of its own, and none is removed before all are done:
  // ext4 without a journal (as on this machine) makes a file created soon after thousands were
  // removed cost far more CPU (its inode allocator skips recently freed inodes), which
  // loaded whichever side ran next. `sync` (untimed) before each run leaves neither side the
  // other's writeback; the two sides alternate, pair by pair.
  let dest = "";
  let made = 0;
  const nextDest = async () => {
    dest = join(base, `unpacked-${made++}`);
    unpacked.push(dest);
    await runPipeline("sync");
  };
  log(
    `bench:build: ${target.name}: ${UNPACK_PAIRS} pairs of ensureUnpacked (every layer, assembled) and zstd -dc | tar -x`,
  );
  // A machine holding nothing: every layer unpacked, the tree assembled (and relocated).
  const unpacks = await alternate(
    UNPACK_PAIRS,
    () =>
      ensureUnpacked({
        file: built.path,
        digest: built.digest,
        envsDir: dest,
      }),
    () =>
      runPipeline(
        `mkdir ${shellQuote(dest)} && zstd -dc ${shellQuote(peerArchive)} | tar -xf - -C ${shellQuote(dest)}`,
      ),
    nextDest,
  );
  const { first: unpack, second: peerUnpack } = unpacks;

  return {
    name: target.name,
    bundle: { digest: built.digest, size: built.size, ...content },
    scanSeconds,
    coldBuild: {
      ...figure(coldMedian, peerMedian, 1.4, (r) => r <= 1.4),
      seconds: coldSeconds,
      peerSeconds,
    },
    cacheHit: {
      ...figure(hits.median, coldMedian, 0.05, (r) => r <= 0.05),
      seconds: hits.seconds,
    },
    unpack: {
      ...figure(unpack.median, peerUnpack.median, 1.3, (r) => r <= 1.3),
      seconds: unpack.seconds,
      peerSeconds: peerUnpack.seconds,
      cpu: figure(unpack.cpuMedian, peerUnpack.cpuMedian, 1.3, (r) => r <= 1.3),
      cpuSeconds: unpack.cpuSeconds,
      peerCpuSeconds: peerUnpack.cpuSeconds,
    },
    size: figure(built.size, peerSize, 0.05, (r) => Math.abs(r - 1) <= 0.05),
  };
}

function rowsOf(result: TargetResult): string[][] {
  const met = (f: Figure) => metText(f.met);
  return [
    [
      result.name,
      "cold build",
      secs(result.coldBuild.envpack),
      `tar | zstd -${ZSTD_LEVEL} -T${ZSTD_THREADS}: ${secs(result.coldBuild.peer)}`,
      ratioText(result.coldBuild.ratio),
      "≤ 1.40",
      met(result.coldBuild),
    ],
    [
      "",
      "cache-hit rebuild",
      secs(result.cacheHit.envpack),
      `cold build: ${secs(result.cacheHit.peer)}`,
      ratioText(result.cacheHit.ratio),
      "≤ 0.05",
      met(result.cacheHit),
    ],
    [
      "",
      "unpack",
      secs(result.unpack.envpack),
      `zstd -dc | tar -x: ${secs(result.unpack.peer)}`,
      ratioText(result.unpack.ratio),
      "≤ 1.30",
      met(result.unpack),
    ],
    [
      "",
      "  its CPU time",
      secs(result.unpack.cpu.envpack),
      `zstd -dc | tar -x: ${secs(result.unpack.cpu.peer)}`,
      ratioText(result.unpack.cpu.ratio),
      "",
      "",
    ],
    [
      "",
      "bundle size",
      megabytes(result.size.envpack),
      `zstd -${ZSTD_LEVEL}: ${megabytes(result.size.peer)}`,
      ratioText(result.size.ratio),
      "0.95–1.05",
      met(result.size),
    ],
  ];
}

/** The realworld bundle's size with declared dependencies (the default) and with only the import closure. */
async function declaredSizeChange(
  appDir: string,
  work: string,
): Promise<{ bytes: number; onlyImportedBytes: number; packages: number }> {
  log("bench:build: node-realworld: with and without declared dependencies");
  const once = (onlyImported: boolean) =>
    build({
      entries: ["src/main.ts"],
      cwd: appDir,
      cacheDir: join(work, `declared-${onlyImported}`),
      onlyImported,
    });
  const full = await once(false);
  const strict = await once(true);
  const manifest = await scan({ entries: ["src/main.ts"], cwd: appDir });
  const packages = manifest.packages.filter(
    (p) => p.reason === "declared",
  ).length;
  return { bytes: full.size, onlyImportedBytes: strict.size, packages };
}

async function main(): Promise<void> {
  const json = wantsJson(process.argv.slice(2));
  await requireTools(["tar", "zstd", "bash"]);
  await withBenchFixtures("build", async (fixtures) => {
    const { work, appDir } = fixtures;
    const targets = [fixtures.condaLarge, fixtures.nodeRealworld];
    const results: TargetResult[] = [];
    const unpacked: string[] = [];
    for (const target of targets)
      results.push(await benchTarget(target, work, unpacked));
    const declared = await declaredSizeChange(appDir, work);
    for (const done of unpacked) await removeTree(done); // layers are read-only

    if (json) {
      process.stdout.write(
        `${JSON.stringify({ runs: RUNS, unpackPairs: UNPACK_PAIRS, zstd: { level: ZSTD_LEVEL, threads: ZSTD_THREADS }, targets: results }, null, 2)}\n`,
      );
      return;
    }
    const lines = [
      `bench:build — median of ${RUNS} runs (cold builds: each followed by the peer, unpack: ${UNPACK_PAIRS} alternated pairs; every timed run after a sync); peer = tar | zstd -${ZSTD_LEVEL} -T${ZSTD_THREADS} on the bundle's own unpacked content`,
      "",
      formatTable(FIGURE_HEADER, results.flatMap(rowsOf)),
      "",
    ];
    for (const r of results) {
      lines.push(
        `${r.name}: ${r.bundle.entries} entries, ${megabytes(r.bundle.bytes)} in regular files; of the cold build, ${secs(r.scanSeconds)} until the scan was done; bundle ${r.bundle.digest.slice(0, 19)}…`,
      );
    }
    lines.push(
      `node-realworld: declared dependencies change the bundle by ${declared.bytes - declared.onlyImportedBytes} bytes (${declared.bytes} with them, ${declared.onlyImportedBytes} with --only-imported; ${declared.packages} declared packages no import reaches)`,
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}

await main();
