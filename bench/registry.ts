// `npm run bench:registry`: a cold build against a build-or-pull hit on a clean cache, from the
// local registry (a directory, the embedded default: the figure with the target) and from
// an OCI registry on loopback (Debian's docker-registry), and push/pull throughput against the
// latter, for the realworld Node app and the large Conda fixture.

import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { build, type BuildResult } from "../src/api/index.js";
import { hashFile } from "../src/core/index.js";
import { openRegistry } from "../src/registry/index.js";
import { startRegistry } from "./lib/registry-server.js";
import { requireTools } from "./lib/shell.js";
import { ratio, repeat, timed } from "./lib/stats.js";
import {
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

interface TargetResult {
  name: string;
  size: number;
  coldSeconds: number;
  /** Hit from the local directory registry. */
  hitSeconds: number;
  hitRatio: number | null;
  /** Hit from the OCI registry on loopback. */
  ociHitSeconds: number;
  ociHitRatio: number | null;
  pushMBps: number;
  pullMBps: number;
}

async function benchTarget(
  target: BenchTarget,
  host: string,
  work: string,
): Promise<TargetResult> {
  const base = join(work, target.name);
  await mkdir(base, { recursive: true });
  const fresh = () => mkdtemp(join(base, "cache-"));
  const buildWith = async (cacheDir: string, url?: string) =>
    build({
      ...buildOptionsOf(target, cacheDir),
      registry: url === undefined ? undefined : { url, insecure: true },
    });

  log(`bench:registry: ${target.name}: ${RUNS} cold builds (no registry)`);
  const cold = await repeat(RUNS, async () => buildWith(await fresh()));
  const built: BuildResult = cold.last;

  /** Publishes to `url`, then times build-or-pull hits on clean caches. */
  const hitsFrom = async (url: string, what: string) => {
    const published = await buildWith(await fresh(), url);
    if (published.source !== "built" || published.pushed !== true)
      throw new Error(`${target.name}: the publishing build did not push`);
    log(
      `bench:registry: ${target.name}: ${RUNS} build-or-pull hits from ${what} on clean caches`,
    );
    let caches: string[] = [];
    return repeat(
      RUNS,
      async (run) => {
        const hit = await buildWith(caches[run] as string, url);
        if (hit.source !== "registry" || hit.digest !== built.digest)
          throw new Error(
            `${target.name}: expected a registry hit, got ${hit.source}`,
          );
        return hit;
      },
      async (run) => {
        if (run === 0)
          caches = await Promise.all(Array.from({ length: RUNS }, fresh));
      },
    );
  };
  const hits = await hitsFrom(
    join(base, "local-registry"),
    "the local directory registry",
  );
  const url = `oci://${host}/bench-${randomBytes(4).toString("hex")}`;
  const ociHits = await hitsFrom(url, "the OCI registry");

  log(`bench:registry: ${target.name}: push and pull`);
  const { digest, size } = await hashFile(built.path);
  const registry = openRegistry(
    url.replace(/bench-\w+$/, `push-${randomBytes(4).toString("hex")}`),
    {
      insecure: true,
    },
  );
  const entry = { digest, size, inputDigest: built.inputDigest, meta: {} };
  const pushed = await timed(() => registry.push(built.path, entry));
  const pulls = await repeat(RUNS, (run) =>
    registry.pull(digest, join(base, `pulled-${run}.tar.zst`)),
  );
  return {
    name: target.name,
    size,
    coldSeconds: cold.median,
    hitSeconds: hits.median,
    hitRatio: ratio(hits.median, cold.median),
    ociHitSeconds: ociHits.median,
    ociHitRatio: ratio(ociHits.median, cold.median),
    pushMBps: size / 1e6 / pushed.seconds,
    pullMBps: size / 1e6 / pulls.median,
  };
}

async function main(): Promise<void> {
  const json = wantsJson(process.argv.slice(2));
  await requireTools(["docker-registry"]);
  await withBenchFixtures("registry", async (fixtures) => {
    const { work } = fixtures;
    const server = await startRegistry({ storageDir: join(work, "registry") });
    try {
      await report(json, server.host, work, [
        fixtures.nodeRealworld,
        fixtures.condaLarge,
      ]);
    } finally {
      await server.stop();
    }
  });
}

/** Measures every target against the OCI registry at `host` and prints the table (or JSON). */
async function report(
  json: boolean,
  host: string,
  work: string,
  targets: BenchTarget[],
): Promise<void> {
  const results: TargetResult[] = [];
  for (const target of targets)
    results.push(await benchTarget(target, host, work));
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ runs: RUNS, targets: results }, null, 2)}\n`,
    );
    return;
  }
  const rows = results.flatMap((r) => [
    [
      r.name,
      "hit (local directory registry)",
      secs(r.hitSeconds),
      `cold build: ${secs(r.coldSeconds)}`,
      ratioText(r.hitRatio),
      "≤ 0.10",
      metText(r.hitRatio !== null && r.hitRatio <= 0.1),
    ],
    [
      "",
      "hit (OCI registry, loopback)",
      secs(r.ociHitSeconds),
      `cold build: ${secs(r.coldSeconds)}`,
      ratioText(r.ociHitRatio),
      "",
      "",
    ],
    [
      "",
      "push (loopback)",
      `${r.pushMBps.toFixed(0)} MB/s`,
      megabytes(r.size),
      "",
      "",
      "",
    ],
    [
      "",
      "pull (loopback, verified)",
      `${r.pullMBps.toFixed(0)} MB/s`,
      megabytes(r.size),
      "",
      "",
      "",
    ],
  ]);
  process.stdout.write(
    [
      `bench:registry — median of ${RUNS} runs; hits are build-or-pull on a clean cache (quick scan, lookup, verified pull); OCI registry: docker-registry on ${host} (file-system storage)`,
      "",
      formatTable(
        ["fixture", "figure", "envpack", "against", "ratio", "target", "met"],
        rows,
      ),
      "",
    ].join("\n"),
  );
}

await main();
