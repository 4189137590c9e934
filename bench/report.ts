// `npm run bench:report`: (1) `envpack report` on a 100,000-task run log against a node process
// that only reads and JSON.parses every line of the same log (time ratio, target ≤ 3×), its peak
// memory (target ≤ 500 MB) and the page's size; (2) what the run log costs an executor: no-op
// warm tasks per second with and without `log`, in the same run.

import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { finished } from "node:stream/promises";
import { execa } from "execa";
import { Executor } from "../src/index.js";
import { prepareApp, repoRoot } from "./lib/fixtures.js";
import { seededRandom } from "./lib/seeded-random.js";
import { formatTable, megabytes, ratioText, wantsJson } from "./lib/table.js";

const TASKS = 100_000;
const WORKERS = 200;
const APPS = ["simulate", "analyse", "convert", "plot", "archive"];
const LOG_TASKS = 5_000;
const ROUNDS = 2;
const TARGET_TIME = 3;
const TARGET_MB = 500;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Writes a run log of `TASKS` tasks on `WORKERS` workers: 2 % fail, 1 % go over their label. */
async function writeLog(path: string): Promise<number> {
  const random = seededRandom(7);
  const out = createWriteStream(path);
  const t0 = Date.UTC(2026, 0, 1);
  let lines = 0;
  const put = (t: number, record: Record<string, unknown>) => {
    lines++;
    return out.write(`${JSON.stringify({ t: Math.round(t), ...record })}\n`);
  };
  put(t0, {
    type: "run:start",
    version: 1,
    backend: "workqueue",
    envpack: "bench",
    pid: 1,
    options: {},
  });
  const free: number[] = [];
  for (let w = 0; w < WORKERS; w++) {
    const cores = [2, 4, 8, 16][w % 4] as number;
    put(t0 + w, {
      type: "worker:joined",
      workerId: `w${w}`,
      resources: { cores, memory: cores * 2000, disk: 50000, gpus: 0 },
    });
    free.push(t0 + 1000);
  }
  for (const app of APPS)
    put(t0, { type: "app:defined", app, kind: "module", resources: {} });
  for (let i = 1; i <= TASKS; i++) {
    const app = APPS[i % APPS.length] as string;
    const id = `t${i}`;
    const w = Math.floor(random() * WORKERS);
    const start = Math.max(free[w] as number, t0 + i * 2);
    const wall = 200 + random() * 2000;
    const label = { cores: 1, memory: 500, disk: 1000, gpus: 0 };
    put(t0 + i * 2, {
      type: "task:state",
      id,
      category: app,
      state: "queued",
      app,
    });
    put(start, {
      type: "task:state",
      id,
      category: app,
      state: "running",
      workerId: `w${w}`,
      label,
    });
    const roll = random();
    const reason = roll < 0.02 ? "exit" : roll < 0.03 ? "over-resources" : "ok";
    const result = {
      protocol: 1,
      id,
      workerId: `w${w}`,
      label,
      attempt: 0,
      ok: reason === "ok",
      reason,
      usage: {
        peakMemory:
          100 + random() * 400 + (reason === "over-resources" ? 500 : 0),
        cpuMs: wall * random(),
        disk: 0,
        wallMs: wall,
        cores: random(),
      },
      durationMs: wall,
      ...(reason === "exit"
        ? {
            error: {
              name: "Error",
              message: "input missing",
              stack: "Error: input missing\n    at run (work.mjs:3:9)",
            },
          }
        : {}),
    };
    free[w] = start + wall;
    const ok = put(start + wall, {
      type: "task:state",
      id,
      category: app,
      state: reason === "ok" ? "done" : "failed",
      workerId: `w${w}`,
      label,
      result,
    });
    if (reason === "over-resources") {
      put(start + wall, {
        type: "task:state",
        id,
        category: app,
        state: "retry",
      });
      put(start + wall + 1, {
        type: "task:state",
        id,
        category: app,
        state: "running",
        workerId: `w${w}`,
        label: { cores: 16, memory: 32000, disk: 50000, gpus: 0 },
      });
      put(start + 2 * wall, {
        type: "task:state",
        id,
        category: app,
        state: "done",
        workerId: `w${w}`,
        label,
        result: { ...result, attempt: 1, ok: true, reason: "ok" },
      });
      free[w] = start + 2 * wall;
    }
    if (i % 10_000 === 0)
      put(start + wall, {
        type: "label:chosen",
        category: app,
        samples: i / APPS.length,
        label: { cores: 1, memory: 450 + (i % 7) * 10 },
        reason: "max",
        peaks: { memory: 500, cores: 1, disk: 0 },
        overLabel: 0,
      });
    if (!ok) await once(out, "drain");
  }
  put(t0 + TASKS * 3, { type: "run:end", counts: {} });
  out.end();
  await finished(out);
  return lines;
}

/** The peer: read the log and JSON.parse every line, nothing else. */
const PEER = `
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
let n = 0;
for await (const line of createInterface({ input: createReadStream(process.argv[2]) }))
  if (line !== "") { JSON.parse(line); n++; }
console.log(n);
`;

/** Wall seconds, CPU seconds (user + sys) and peak RSS (MB) of a node command, by GNU time. */
async function measure(
  args: string[],
): Promise<{ seconds: number; cpu: number; peakMB: number }> {
  const run = await execa(
    "/usr/bin/time",
    ["-f", "%e %U %S %M", process.execPath, ...args],
    {
      stdin: "ignore",
    },
  );
  const [seconds, user, sys, kb] = String(run.stderr)
    .trim()
    .split("\n")
    .pop()!
    .split(" ");
  return {
    seconds: Number(seconds),
    cpu: Number(user) + Number(sys),
    peakMB: Number(kb) / 1024,
  };
}

/** No-op warm tasks per second, with a run log or without. */
async function throughput(
  entry: string,
  work: string,
  withLog: boolean,
): Promise<number> {
  const executor = new Executor({
    workers: [{ cores: 2 }],
    workDir: join(work, withLog ? "with" : "without"),
    progress: false,
    ...(withLog ? { log: join(work, `exec-${Date.now()}.jsonl`) } : {}),
  });
  try {
    const noop = executor.app(entry, "noop", {
      resources: { cores: 1, memory: 100 },
    });
    await Promise.all(Array.from({ length: 50 }, () => noop()));
    const start = performance.now();
    await Promise.all(Array.from({ length: LOG_TASKS }, () => noop()));
    return LOG_TASKS / ((performance.now() - start) / 1000);
  } finally {
    await executor.shutdown();
  }
}

async function main(): Promise<void> {
  // BENCH_REPORT_LOG=FILE: only write the synthetic log there (to profile the report by hand).
  const only = process.env["BENCH_REPORT_LOG"];
  if (only !== undefined && only !== "") {
    await writeLog(only);
    return;
  }
  const json = wantsJson(process.argv.slice(2));
  const work = await mkdtemp(join(tmpdir(), "envpack-bench-report-"));
  try {
    const runLog = join(work, "run.jsonl");
    log(
      `bench:report: writing a run log of ${TASKS} tasks on ${WORKERS} workers`,
    );
    const lines = await writeLog(runLog);
    const logBytes = (await stat(runLog)).size;
    const peerFile = join(work, "peer.mjs");
    await writeFile(peerFile, PEER);
    const html = join(work, "run.html");
    const cli = join(repoRoot(), "dist", "src", "cli", "main.js");
    log(
      "bench:report: envpack report vs read + JSON.parse, alternating, best of 3",
    );
    type Measure = { seconds: number; cpu: number; peakMB: number };
    const ours: Measure[] = [];
    const peer: Measure[] = [];
    for (let i = 0; i < 3; i++) {
      peer.push(await measure([peerFile, runLog]));
      ours.push(await measure([cli, "report", runLog, "-o", html]));
    }
    const best = (list: Measure[]) =>
      list.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const report = best(ours);
    const parse = best(peer);
    const peakMB = Math.max(...ours.map((o) => o.peakMB));
    const htmlBytes = (await stat(html)).size;

    log(
      `bench:report: run log cost, ${LOG_TASKS} no-op warm tasks, ${ROUNDS} rounds each`,
    );
    const appDir = await prepareApp("exec-tasks", log);
    const entry = join(appDir, "src", "tasks.ts");
    const without: number[] = [];
    const withLog: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      without.push(await throughput(entry, work, false));
      withLog.push(await throughput(entry, work, true));
    }
    const plain = Math.max(...without);
    const logged = Math.max(...withLog);
    const timeRatio = report.seconds / parse.seconds;
    const cpuRatio =
      Math.min(...ours.map((o) => o.cpu)) / Math.min(...peer.map((o) => o.cpu));

    if (json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            tasks: TASKS,
            logLines: lines,
            logBytes,
            reportSeconds: report.seconds,
            parseSeconds: parse.seconds,
            timeRatio,
            cpuRatio,
            peakMB,
            htmlBytes,
            tasksPerSecond: { withoutLog: plain, withLog: logged },
            logCost: 1 - logged / plain,
          },
          null,
          2,
        )}\n`,
      );
      return;
    }
    process.stdout.write(
      `${formatTable(
        ["measure", "envpack", "peer / target", "ratio"],
        [
          [
            `report of ${TASKS} tasks (${lines} lines, ${megabytes(logBytes)})`,
            `${report.seconds.toFixed(2)} s`,
            `read + JSON.parse: ${parse.seconds.toFixed(2)} s`,
            ratioText(timeRatio, `≤ ${TARGET_TIME}`),
          ],
          [
            "CPU time (user + sys) of the same, best of 3",
            `${Math.min(...ours.map((o) => o.cpu)).toFixed(2)} s`,
            `read + JSON.parse: ${Math.min(...peer.map((o) => o.cpu)).toFixed(2)} s`,
            ratioText(cpuRatio, `≤ ${TARGET_TIME}`),
          ],
          [
            "peak memory of envpack report",
            `${peakMB.toFixed(0)} MB`,
            `target ${TARGET_MB} MB (peer ${parse.peakMB.toFixed(0)} MB)`,
            ratioText(peakMB / TARGET_MB, "≤ 1"),
          ],
          ["report page", megabytes(htmlBytes), "", ""],
          [
            `no-op warm tasks/s with log (${LOG_TASKS} tasks)`,
            logged.toFixed(0),
            `without log: ${plain.toFixed(0)}`,
            ratioText(logged / plain),
          ],
        ],
      )}\n`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
