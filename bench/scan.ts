// `npm run bench:scan`: envpack's scanner against @vercel/nft's nodeFileTrace on the realworld fixture app, in one process.
// nft parses JavaScript only (acorn), so both tools are timed on the app transpiled to build/main.js; envpack's
// own TypeScript entry src/main.ts is timed too, and nft's result on it is shown as a finding.

import { join, relative, sep } from "node:path";
import { nodeFileTrace, type NodeFileTraceResult } from "@vercel/nft";
import { scan } from "../src/scan/index.js";
import type { Manifest } from "../src/core/index.js";
import { prepareApp } from "./lib/fixtures.js";
import { transpileTree } from "./lib/transpile.js";
import { median, ratio, timed } from "./lib/stats.js";
import { formatTable, ratioText, secs, wantsJson } from "./lib/table.js";

const APP = "realworld";
const TS_ENTRY = "src/main.ts";
const JS_ENTRY = "build/main.js";
const RUNS = 5;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** One envpack scan: its manifest and the number of files it parsed (from `scan:done`). */
async function envpackScan(
  dir: string,
  entry: string,
): Promise<{ manifest: Manifest; files: number }> {
  let files = -1;
  const manifest = await scan({
    entries: [entry],
    cwd: dir,
    generatorVersion: "bench",
    onEvent: (event) => {
      if (event.type === "scan:done") files = event.files;
    },
  });
  return { manifest, files };
}

function nftTrace(dir: string, entry: string): Promise<NodeFileTraceResult> {
  return nodeFileTrace([join(dir, entry)], {
    base: dir,
    ts: true,
    mixedModules: true,
  });
}

/** The package directory (base-relative, e.g. `node_modules/send/node_modules/ms`) holding a file, if any. */
function packageDirOf(file: string): string | undefined {
  const parts = file.split("/");
  const at = parts.lastIndexOf("node_modules");
  if (at === -1 || at + 1 >= parts.length - 1) return undefined;
  const scoped = parts[at + 1]?.startsWith("@") === true;
  const end = at + (scoped ? 3 : 2);
  if (end > parts.length - 1) return undefined;
  return parts.slice(0, end).join("/");
}

/** Packages nft reached, and which app-level imports envpack left unresolved although nft followed them. */
function compare(
  dir: string,
  manifest: Manifest,
  nft: NodeFileTraceResult,
): {
  nftPackages: string[];
  missedPackages: string[];
  missedImports: string[];
} {
  const toPosix = (p: string) => (sep === "/" ? p : p.split(sep).join("/"));
  const envpackPackages = new Set(
    manifest.packages.map((p) =>
      toPosix(relative(dir, join(manifest.root, ...p.path.split("/")))),
    ),
  );
  const nftPackages = new Set<string>();
  for (const file of nft.fileList) {
    const pkg = packageDirOf(file);
    if (pkg !== undefined) nftPackages.add(pkg);
  }
  const missedPackages = [...nftPackages]
    .filter((p) => !envpackPackages.has(p))
    .sort();

  // nft's children of each app file: what nft resolved from it.
  const children = new Map<string, string[]>();
  for (const [file, reason] of nft.reasons) {
    for (const parent of reason.parents) {
      const list = children.get(parent) ?? [];
      list.push(file);
      children.set(parent, list);
    }
  }
  const missedImports: string[] = [];
  for (const u of manifest.unresolved) {
    if (u.package !== undefined) continue;
    const file = toPosix(relative(dir, join(manifest.root, u.file)));
    const found = (children.get(file) ?? []).some((child) =>
      u.specifier.startsWith(".")
        ? child.startsWith(
            toPosix(join(file, "..", u.specifier)).replace(/\.[cm]?js$/, ""),
          )
        : packageDirOf(child)?.endsWith(`node_modules/${u.specifier}`) === true,
    );
    if (found) missedImports.push(`${u.specifier} (${u.file}:${u.line})`);
  }
  return {
    nftPackages: [...nftPackages].sort(),
    missedPackages,
    missedImports,
  };
}

async function main(): Promise<void> {
  const json = wantsJson(process.argv.slice(2));
  const dir = await prepareApp(APP, log);
  await transpileTree(join(dir, "src"), join(dir, "build"));

  log(`bench:scan: warming up on fixtures/apps/${APP}`);
  await envpackScan(dir, JS_ENTRY);
  await envpackScan(dir, TS_ENTRY);
  await nftTrace(dir, JS_ENTRY);
  const nftOnTs = await nftTrace(dir, TS_ENTRY);

  log(`bench:scan: ${RUNS} runs each, interleaved`);
  const seconds = {
    envpackJs: [] as number[],
    envpackTs: [] as number[],
    nft: [] as number[],
  };
  let envpackJs: { manifest: Manifest; files: number } | undefined;
  let envpackTs: { manifest: Manifest; files: number } | undefined;
  let nft: NodeFileTraceResult | undefined;
  for (let run = 0; run < RUNS; run++) {
    const e = await timed(() => envpackScan(dir, JS_ENTRY));
    const n = await timed(() => nftTrace(dir, JS_ENTRY));
    const t = await timed(() => envpackScan(dir, TS_ENTRY));
    seconds.envpackJs.push(e.seconds);
    seconds.nft.push(n.seconds);
    seconds.envpackTs.push(t.seconds);
    envpackJs = e.value;
    nft = n.value;
    envpackTs = t.value;
  }
  if (envpackJs === undefined || envpackTs === undefined || nft === undefined)
    throw new Error("bench:scan: no runs");

  const check = compare(dir, envpackJs.manifest, nft);
  const checkTs = compare(dir, envpackTs.manifest, nft);
  const medians = {
    envpackJs: median(seconds.envpackJs),
    envpackTs: median(seconds.envpackTs),
    nft: median(seconds.nft),
  };
  const speed = ratio(medians.envpackJs, medians.nft);
  const speedTs = ratio(medians.envpackTs, medians.nft);
  const summary = (result: { manifest: Manifest; files: number }) => {
    const app = result.manifest.unresolved.filter(
      (u) => u.package === undefined,
    );
    return {
      filesParsed: result.files,
      packages: result.manifest.packages.length,
      unresolvedApp: app.length,
      unresolvedInPackages: result.manifest.unresolved.length - app.length,
    };
  };
  const missed = [...check.missedPackages, ...check.missedImports];
  const missedTs = [...checkTs.missedPackages, ...checkTs.missedImports];

  // nft lists every package.json it read and follows every `exports` branch (require and
  // import); envpack parses only the branch Node takes, so the file counts differ by design.
  const nftPackageJsons = [...nft.fileList].filter(
    (f) => f === "package.json" || f.endsWith("/package.json"),
  ).length;
  const figures = {
    app: `fixtures/apps/${APP}`,
    runs: RUNS,
    envpack: {
      entry: JS_ENTRY,
      ...summary(envpackJs),
      medianSeconds: medians.envpackJs,
      seconds: seconds.envpackJs,
    },
    envpackTypeScript: {
      entry: TS_ENTRY,
      ...summary(envpackTs),
      medianSeconds: medians.envpackTs,
      seconds: seconds.envpackTs,
    },
    nft: {
      entry: JS_ENTRY,
      fileList: nft.fileList.size,
      packageJsonFiles: nftPackageJsons,
      packages: check.nftPackages.length,
      warnings: nft.warnings.size,
      medianSeconds: medians.nft,
      seconds: seconds.nft,
    },
    nftOnTypeScript: {
      entry: TS_ENTRY,
      fileList: nftOnTs.fileList.size,
      warnings: [...nftOnTs.warnings].map((w) =>
        w.message.replace(/\s*\n\s*/g, " "),
      ),
    },
    ratio: speed,
    ratioTypeScript: speedTs,
    target: { ratio: 1.0, aim: 0.5 },
    missedByEnvpack: {
      packages: check.missedPackages,
      imports: check.missedImports,
    },
    missedByEnvpackTypeScript: {
      packages: checkTs.missedPackages,
      imports: checkTs.missedImports,
    },
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    return;
  }
  const row = (
    tool: string,
    entry: string,
    files: string,
    packages: number,
    time: number,
    vsNft: number | null,
  ) => [tool, entry, files, String(packages), secs(time), ratioText(vsNft)];
  const rows = [
    row(
      "envpack scan()",
      JS_ENTRY,
      `${envpackJs.files} parsed`,
      envpackJs.manifest.packages.length,
      medians.envpackJs,
      speed,
    ),
    row(
      "nft nodeFileTrace()",
      JS_ENTRY,
      `${nft.fileList.size} in fileList`,
      check.nftPackages.length,
      medians.nft,
      1,
    ),
    row(
      "envpack scan()",
      TS_ENTRY,
      `${envpackTs.files} parsed`,
      envpackTs.manifest.packages.length,
      medians.envpackTs,
      speedTs,
    ),
  ];
  const tsApp = summary(envpackTs).unresolvedApp;
  process.stdout.write(
    [
      `bench:scan — fixtures/apps/${APP}, median of ${RUNS} runs after a warm-up`,
      "",
      formatTable(
        ["tool", "entry", "files", "packages", "median", "÷ nft"],
        rows,
      ),
      "",
      `ratio envpack/nft on ${JS_ENTRY}: ${ratioText(speed, "≤ 1.00, aim 0.50")}`,
      `envpack unresolved: ${summary(envpackJs).unresolvedApp} in the app (${tsApp} from ${TS_ENTRY}), ${summary(envpackJs).unresolvedInPackages} inside packages`,
      `missed by envpack: ${missed.length === 0 ? "none" : missed.join(", ")}`,
      `missed by envpack from ${TS_ENTRY}: ${missedTs.length === 0 ? "none" : missedTs.join(", ")}`,
      `nft's fileList holds ${nftPackageJsons} package.json files and both require and import branches of dual packages; envpack parses the branch Node loads`,
      `nft on ${TS_ENTRY}: ${nftOnTs.fileList.size} files; ${figures.nftOnTypeScript.warnings.join("; ") || "no warnings"}`,
      "",
    ].join("\n"),
  );
}

await main();
