// `npm run bench:layers`: what layered bundles (format 3) save after an edit of one app file, for
// the realworld Node app and the large Conda fixture — the rebuild against a cold build, and the
// time to a ready tree on a machine holding the previous version against a full unpack, each
// in-process (the api) and as whole processes (the CLI). `--only conda-large` (or
// `node-realworld`) measures one fixture.

import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { build, type BuildResult } from "../src/api/index.js";
import { ensureUnpacked } from "../packer/index.js";
import type { Digest } from "../src/core/index.js";
import { repoRoot } from "./lib/fixtures.js";
import { registryBytesSection } from "./lib/layers-registry.js";
import { median, ratio, timed } from "./lib/stats.js";
import {
  FIGURE_HEADER,
  formatTable,
  megabytes,
  metText,
  ratioText,
  secs,
  wantsJson,
  type Row,
} from "./lib/table.js";
import {
  buildOptionsOf,
  log,
  withBenchFixtures,
  type BenchTarget,
} from "./lib/targets.js";

const RUNS = 3;
const TARGET = 0.05;

/** One fixture, its `cwd` a copy the bench edits. */
interface Target extends BenchTarget {
  /** The app file each run edits (appends a comment line to). */
  edit: string;
}

/** A figure against its peer from the same run, with the medians' ratio. */
interface Figure {
  seconds: number[];
  peerSeconds: number[];
  envpack: number;
  peer: number;
  ratio: number | null;
  met: boolean;
}

interface TargetResult {
  name: string;
  /** Bytes of the index and all layers, and of the layer an edit rebuilds. */
  bundleBytes: number;
  appLayerBytes: number;
  rebuild: Figure;
  rebuildProcess: Figure;
  readyTree: Figure;
  readyTreeProcess: Figure;
}

/**
 * Sections other parts of issue 14 add to this report (e.g. the registry bytes pushed and pulled
 * after the edit): each gets the targets' last builds and returns table rows.
 */
export type LayersBenchSection = (context: {
  target: Target;
  before: BuildResult;
  after: BuildResult;
  work: string;
}) => Promise<Row[]>;
const SECTIONS: LayersBenchSection[] = [registryBytesSection];

function figure(seconds: number[], peerSeconds: number[]): Figure {
  const envpack = median(seconds);
  const peer = median(peerSeconds);
  const r = ratio(envpack, peer);
  return {
    seconds,
    peerSeconds,
    envpack,
    peer,
    ratio: r,
    met: r !== null && r <= TARGET,
  };
}

/** Wall seconds of one `envpack ARGS` process (the built CLI); fails on a non-zero exit. */
async function envpackProcess(
  args: string[],
  cwd: string,
  cacheDir: string,
): Promise<number> {
  const start = performance.now();
  const result = await execa(
    process.execPath,
    [join(repoRoot(), "dist", "src", "cli", "main.js"), ...args],
    {
      cwd,
      env: { CI: "true", ENVPACK_CACHE_DIR: cacheDir },
      reject: false,
      stdin: "ignore",
    },
  );
  const seconds = (performance.now() - start) / 1000;
  if (result.exitCode !== 0)
    throw new Error(
      `bench:layers: envpack ${args.join(" ")} exited ${result.exitCode}:\n${String(result.stderr).slice(-2000)}`,
    );
  return seconds;
}

async function appendLine(file: string, line: string): Promise<void> {
  await writeFile(file, `${await readFile(file, "utf8")}${line}\n`);
}

async function benchTarget(
  target: Target,
  work: string,
): Promise<{ result: TargetResult; section: Row[] }> {
  const base = join(work, target.name);
  await mkdir(base, { recursive: true });
  const options = (cacheDir: string) => buildOptionsOf(target, cacheDir);
  const cliArgs = [
    "build",
    ...target.entries,
    ...(target.env === undefined ? [] : ["--env", target.env]),
  ];
  const editFile = join(target.cwd, target.edit);
  const comment = target.edit.endsWith(".py") ? "#" : "//";

  // Cold builds and edit rebuilds alternate: each rebuild follows the cold build of the version
  // before it, in the same cache, so both see the same machine state.
  const cold: number[] = [];
  const rebuild: number[] = [];
  const coldProcess: number[] = [];
  const rebuildProcess: number[] = [];
  let before: BuildResult | undefined;
  let after: BuildResult | undefined;
  let cacheDir = "";
  for (let run = 0; run < RUNS; run++) {
    log(`bench:layers: ${target.name}: run ${run + 1}/${RUNS}`);
    cacheDir = join(base, `cache-${run}`);
    const first = await timed(() => build(options(cacheDir)));
    if (first.value.source !== "built")
      throw new Error(`${target.name}: a cold build hit the cache`);
    cold.push(first.seconds);
    await appendLine(editFile, `${comment} bench:layers edit ${run}`);
    const second = await timed(() => build(options(cacheDir)));
    const rebuilt = second.value.layers.filter((l) => !l.cached);
    if (rebuilt.map((l) => l.role).join() !== "app")
      throw new Error(
        `${target.name}: the edit rebuilt ${rebuilt.map((l) => l.role).join(", ")}, not the app layer alone`,
      );
    rebuild.push(second.seconds);
    before = first.value;
    after = second.value;

    const processCache = join(base, `process-cache-${run}`);
    coldProcess.push(await envpackProcess(cliArgs, target.cwd, processCache));
    await appendLine(editFile, `${comment} bench:layers process edit ${run}`);
    rebuildProcess.push(
      await envpackProcess(cliArgs, target.cwd, processCache),
    );
    await rm(processCache, { recursive: true, force: true });
    if (run < RUNS - 1) await rm(cacheDir, { recursive: true, force: true });
  }
  const v1 = before as BuildResult;
  const v2 = after as BuildResult;

  // A machine holding v1 (unpacked, its layers with it) makes v2 ready; the peer is a machine
  // holding nothing, which unpacks every layer of v2.
  log(
    `bench:layers: ${target.name}: ${RUNS} × ready tree, holding v1 and empty`,
  );
  const ready: number[] = [];
  const full: number[] = [];
  const readyProcess: number[] = [];
  const fullProcess: number[] = [];
  const unpack = (result: BuildResult, envsDir: string) =>
    ensureUnpacked({
      file: result.path,
      digest: result.digest as Digest,
      envsDir,
    });
  for (let run = 0; run < RUNS; run++) {
    const holding = join(base, `machine-${run}`);
    await unpack(v1, join(holding, "envs"));
    ready.push((await timed(() => unpack(v2, join(holding, "envs")))).seconds);
    const empty = join(base, `empty-${run}`);
    full.push((await timed(() => unpack(v2, join(empty, "envs")))).seconds);
    await rm(holding, { recursive: true, force: true });
    await rm(empty, { recursive: true, force: true });

    // The same as whole processes: `envpack run FILE -- true` with the cache as the machine.
    const machine = join(base, `process-machine-${run}`);
    const runArgs = (result: BuildResult) => ["run", result.path, "--", "true"];
    await envpackProcess(runArgs(v1), target.cwd, machine);
    readyProcess.push(await envpackProcess(runArgs(v2), target.cwd, machine));
    const bare = join(base, `process-empty-${run}`);
    fullProcess.push(await envpackProcess(runArgs(v2), target.cwd, bare));
    await rm(machine, { recursive: true, force: true });
    await rm(bare, { recursive: true, force: true });
  }

  const section: Row[] = [];
  for (const add of SECTIONS)
    section.push(...(await add({ target, before: v1, after: v2, work: base })));
  await rm(cacheDir, { recursive: true, force: true });
  return {
    result: {
      name: target.name,
      bundleBytes: v2.size,
      appLayerBytes: v2.layers.find((l) => l.role === "app")?.size ?? 0,
      rebuild: figure(rebuild, cold),
      rebuildProcess: figure(rebuildProcess, coldProcess),
      readyTree: figure(ready, full),
      readyTreeProcess: figure(readyProcess, fullProcess),
    },
    section,
  };
}

function rowsOf(result: TargetResult): Row[] {
  const row = (name: string, f: Figure, peerName: string): Row => [
    name,
    secs(f.envpack),
    `${peerName}: ${secs(f.peer)}`,
    ratioText(f.ratio),
    `≤ ${TARGET.toFixed(2)}`,
    metText(f.met),
  ];
  return [
    [
      result.name,
      ...row("rebuild after an edit", result.rebuild, "cold build"),
    ],
    ["", ...row("  as a process", result.rebuildProcess, "cold build")],
    ["", ...row("ready tree, holding v1", result.readyTree, "full unpack")],
    ["", ...row("  as a process", result.readyTreeProcess, "full unpack")],
  ];
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const json = wantsJson(argv);
  const only = argv.includes("--only")
    ? argv[argv.indexOf("--only") + 1]
    : undefined;
  await withBenchFixtures("layers", async (fixtures) => {
    const { work } = fixtures;
    const nodeApp = join(work, "realworld");
    await cp(fixtures.appDir, nodeApp, {
      recursive: true,
      verbatimSymlinks: true,
    });
    const targets: Target[] = [
      { ...fixtures.condaLarge, edit: "app.py" },
      { ...fixtures.nodeRealworld, cwd: nodeApp, edit: "src/text.ts" },
    ].filter((t) => only === undefined || t.name === only);
    if (targets.length === 0)
      throw new Error(
        `bench:layers: --only ${only}: no such fixture (conda-large, node-realworld)`,
      );
    const results: TargetResult[] = [];
    const sections: Row[] = [];
    for (const target of targets) {
      const { result, section } = await benchTarget(target, work);
      results.push(result);
      sections.push(...section);
    }
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ runs: RUNS, target: TARGET, targets: results, sections }, null, 2)}\n`,
      );
      return;
    }
    const lines = [
      `bench:layers — median of ${RUNS} runs; each figure against its peer from the same run, after appending one line to one app file`,
      "",
      formatTable(FIGURE_HEADER, results.flatMap(rowsOf)),
      "",
      ...results.map(
        (r) =>
          `${r.name}: bundle ${megabytes(r.bundleBytes)} (index and layers); the edit repacked the app layer alone, ${megabytes(r.appLayerBytes)}`,
      ),
    ];
    if (sections.length > 0)
      lines.push("", formatTable(["fixture", "figure", "value"], sections));
    else
      lines.push(
        "",
        "registry bytes after the edit: not measured by this run (LayersBenchSection hook)",
      );
    process.stdout.write(`${lines.join("\n")}\n`);
  });
}

await main();
