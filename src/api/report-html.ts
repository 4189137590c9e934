// The run report as one self-contained HTML page: Chart.js and the page script inlined, the data
// as JSON, so it opens anywhere without a network. What it draws is bounded whatever the run's size.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { REPORT_PAGE_SCRIPT } from "./report-page.js";
import {
  wallOf,
  type AttemptRow,
  type RunData,
  type RunFigures,
} from "./run-report.js";

/** At most this many attempts are drawn as bars (all failures, the rest sampled evenly). */
export const MAX_BARS = 5000;
/** Above this many workers, the usage charts show the pool's sum instead of one line each. */
const MAX_WORKER_LINES = 12;
/** Points per usage line and measured peaks per category drawn, at most. */
const MAX_POINTS = 400;
const MAX_PEAKS = 1000;

/** What the page script draws: see report-page.cjs. */
export interface PageData {
  title: string;
  durationS: number;
  apps: string[];
  slots: string[];
  /** [slot, start s, end s, app, kind (0 ok, 1 failed, 2 ran again, 3 unfinished), task row]. */
  bars: [number, number, number, number, number, number][];
  util: Array<{
    name: string;
    cores: number;
    memory: number;
    /** [s, cores declared, cores measured, memory declared, memory measured]. */
    points: [number, number, number, number, number][];
  }>;
  labels: Array<{
    category: string;
    /** [s, memory label MB or null while measuring]. */
    steps: [number, number | null][];
    /** [s, peak MB, 1 when over its label]. */
    peaks: [number, number, number][];
  }>;
  bundles: {
    places: string[];
    build: (number | null)[];
    transfer: (number | null)[];
    unpack: (number | null)[];
  };
  /** [id, app, worker, state, attempts, wall s, peak MB, cores, error]. */
  tasks: (string | number | null)[][];
}

/** The page's data from a folded run. */
export function pageData(data: RunData): PageData {
  const s = (ms: number) => Math.round(ms) / 1000;
  const end = data.durationMs;
  const apps = [...data.apps.keys()];
  const appIndex = new Map(apps.map((a, i) => [a, i]));
  for (const task of data.tasks)
    if (!appIndex.has(task.app)) {
      appIndex.set(task.app, apps.length);
      apps.push(task.app);
    }
  const rowOf = new Map(data.tasks.map((t, i) => [t, i]));

  // Slots: per worker, each attempt in the first slot free when it started.
  const slots: string[] = [];
  const slotOf = new Map<AttemptRow, number>();
  const byWorker = new Map<string, AttemptRow[]>();
  for (const a of data.attempts) {
    let list = byWorker.get(a.worker);
    if (list === undefined) byWorker.set(a.worker, (list = []));
    list.push(a);
  }
  const workerOrder = [
    ...new Set([...data.workers.map((w) => w.id), ...byWorker.keys()]),
  ];
  for (const worker of workerOrder) {
    const list = (byWorker.get(worker) ?? [])
      .slice()
      .sort((a, b) => a.start - b.start);
    const ends: number[] = [];
    const first = slots.length;
    for (const a of list) {
      let i = ends.findIndex((e) => e <= a.start);
      if (i === -1) i = ends.push(0) - 1;
      ends[i] = a.end ?? end;
      slotOf.set(a, first + i);
    }
    for (let i = 0; i < Math.max(1, ends.length); i++)
      slots.push(`${worker} #${i + 1}`);
  }
  const kindOf = (a: AttemptRow) =>
    a.end === undefined ? 3 : a.retried ? 2 : a.outcome === "ok" ? 0 : 1;
  const notOk = data.attempts.filter((a) => kindOf(a) !== 0);
  const ok = data.attempts.filter((a) => kindOf(a) === 0);
  const room = Math.max(0, MAX_BARS - notOk.length);
  const drawn = [...notOk.slice(0, MAX_BARS), ...sample(ok, room)];
  const bars = drawn.map(
    (a) =>
      [
        slotOf.get(a) ?? 0,
        s(a.start),
        s(a.end ?? end),
        appIndex.get(a.task.app) ?? 0,
        kindOf(a),
        rowOf.get(a.task) ?? 0,
      ] as PageData["bars"][number],
  );

  return {
    title: `envpack run report: ${data.log}`,
    durationS: s(end),
    apps,
    slots,
    bars,
    util: usage(data, s),
    labels: labels(data, s),
    bundles: bundleSteps(data),
    tasks: data.tasks.map((t) => {
      const lastAttempt = t.attempts[t.attempts.length - 1];
      let peak: number | null = null;
      let error: string | null = null;
      for (const a of t.attempts) {
        if (a.peakMemory !== undefined)
          peak = Math.max(peak ?? 0, a.peakMemory);
        if (a.error !== undefined) error = a.error;
      }
      return [
        t.id,
        t.app,
        lastAttempt?.worker ?? null,
        t.state,
        t.attempts.length,
        lastAttempt === undefined || lastAttempt.end === undefined
          ? null
          : Math.round(wallOf(lastAttempt)) / 1000,
        peak === null ? null : Math.round(peak * 10) / 10,
        lastAttempt?.cores === undefined
          ? null
          : Math.round(lastAttempt.cores * 100) / 100,
        error,
      ];
    }),
  };
}

/** Per worker (or the pool, when there are many), declared and measured use as step points. */
function usage(data: RunData, s: (ms: number) => number): PageData["util"] {
  const pooled = data.workers.length > MAX_WORKER_LINES;
  const groups = pooled
    ? [
        {
          name: "all workers",
          ids: new Set(data.workers.map((w) => w.id)),
          cores: data.workers.reduce((n, w) => n + w.resources.cores, 0),
          memory: data.workers.reduce((n, w) => n + w.resources.memory, 0),
        },
      ]
    : data.workers.map((w) => ({
        name: w.id,
        ids: new Set([w.id]),
        cores: w.resources.cores,
        memory: w.resources.memory,
      }));
  const end = data.durationMs;
  return groups.map((group) => {
    // +/− at each start and end of an attempt, for each of the four series.
    const changes: [number, number, number, number, number][] = [];
    for (const a of data.attempts) {
      if (!group.ids.has(a.worker)) continue;
      const v: [number, number, number, number] = [
        a.label?.cores ?? 0,
        a.cpuMs !== undefined && a.end !== undefined && a.end > a.start
          ? a.cpuMs / (a.end - a.start)
          : (a.cores ?? 0),
        a.label?.memory ?? 0,
        a.peakMemory ?? 0,
      ];
      changes.push([a.start, v[0], v[1], v[2], v[3]]);
      changes.push([a.end ?? end, -v[0], -v[1], -v[2], -v[3]]);
    }
    changes.sort((x, y) => x[0] - y[0]);
    const round = (n: number) => Math.round(n * 100) / 100;
    type Point = [number, number, number, number, number];
    const points: Point[] = [[0, 0, 0, 0, 0]];
    const now = [0, 0, 0, 0];
    // Many changes: one point per bucket of time holding the highest value each series reached
    // in it, so no peak is lost; few: every change.
    const width = changes.length > 2 * MAX_POINTS ? end / MAX_POINTS : 0;
    let bucket = -1;
    let top: Point | undefined;
    for (const change of changes) {
      const t = change[0];
      for (let k = 0; k < 4; k++)
        now[k] = Math.max(0, (now[k] as number) + (change[k + 1] as number));
      if (width > 0) {
        const b = Math.floor(t / width);
        if (b !== bucket || top === undefined) {
          bucket = b;
          top = [s(b * width), 0, 0, 0, 0];
          points.push(top);
        }
        for (let k = 0; k < 4; k++)
          top[k + 1] = Math.max(top[k + 1] as number, round(now[k] as number));
        continue;
      }
      const point = [s(t), ...now.map(round)] as Point;
      // Changes at one instant: the value after all of them.
      if ((points[points.length - 1] as Point)[0] === point[0])
        points[points.length - 1] = point;
      else points.push(point);
    }
    points.push([s(end), ...now.map(round)] as Point);
    return {
      name: group.name,
      cores: group.cores,
      memory: group.memory,
      points,
    };
  });
}

/** Each category's memory label over time and its tasks' measured peaks. */
function labels(data: RunData, s: (ms: number) => number): PageData["labels"] {
  const categories = new Map<string, PageData["labels"][number]>();
  const of = (category: string) => {
    let c = categories.get(category);
    if (c === undefined)
      categories.set(category, (c = { category, steps: [], peaks: [] }));
    return c;
  };
  for (const l of data.labels)
    of(l.category).steps.push([s(l.at), l.label?.memory ?? null]);
  const peaks = new Map<string, AttemptRow[]>();
  for (const a of data.attempts) {
    if (a.peakMemory === undefined || a.end === undefined) continue;
    let list = peaks.get(a.task.category);
    if (list === undefined) peaks.set(a.task.category, (list = []));
    list.push(a);
  }
  for (const [category, list] of peaks) {
    const c = of(category);
    const over = list.filter((a) => a.outcome === "over-resources");
    const rest = list.filter((a) => a.outcome !== "over-resources");
    c.peaks = [...over, ...sample(rest, Math.max(0, MAX_PEAKS - over.length))]
      .slice(0, MAX_PEAKS)
      .map((a) => [
        s(a.end as number),
        Math.round((a.peakMemory as number) * 10) / 10,
        a.outcome === "over-resources" ? 1 : 0,
      ]);
  }
  // The label holds until the run's end.
  for (const c of categories.values()) {
    const lastStep = c.steps[c.steps.length - 1];
    if (lastStep !== undefined) c.steps.push([s(data.durationMs), lastStep[1]]);
  }
  return [...categories.values()].slice(0, MAX_WORKER_LINES);
}

/** Per place (this host, each worker): total ms of each bundle step (null: none). */
function bundleSteps(data: RunData): PageData["bundles"] {
  const places: string[] = [];
  const sums = { build: [], transfer: [], unpack: [] } as Record<
    "build" | "transfer" | "unpack",
    (number | null)[]
  >;
  for (const b of data.bundles) {
    const place = b.place === "host" ? "this host" : b.place;
    let i = places.indexOf(place);
    if (i === -1) {
      i = places.push(place) - 1;
      for (const list of Object.values(sums)) list.push(null);
    }
    const list = sums[b.step];
    list[i] = Math.round(((list[i] ?? 0) + b.durationMs) * 10) / 10;
  }
  return { places, ...sums };
}

/** At most `n` items of `list`, evenly spread, in order. */
function sample<T>(list: T[], n: number): T[] {
  if (list.length <= n) return list;
  if (n <= 0) return [];
  const out: T[] = [];
  const step = list.length / n;
  for (let i = 0; i < n; i++) out.push(list[Math.floor(i * step)] as T);
  return out;
}

/** Chart.js's browser bundle, as text. */
function chartJs(): string {
  const main = createRequire(import.meta.url).resolve("chart.js");
  return readFileSync(join(dirname(main), "chart.umd.min.js"), "utf8");
}

/** Text safe inside a <script> element. */
function scriptText(text: string): string {
  return text.replace(/<\/(script)/gi, "<\\/$1");
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string,
  );
}

/** The whole report page. */
export function reportHtml(data: RunData, figures: RunFigures): string {
  const page = pageData(data);
  const t = figures.tasks;
  const drawnNote =
    page.bars.length < data.attempts.length
      ? ` Drawn: ${page.bars.length} of ${data.attempts.length} attempts (every failure, the rest sampled evenly).`
      : "";
  const warnings = figures.warnings
    .map((w) => `<li class="warn">${escapeHtml(w.message)} [${w.code}]</li>`)
    .join("");
  const json = JSON.stringify(page).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(page.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin: 1.5em 0 0.3em; }
.summary { color: #444; }
.box { position: relative; height: 300px; }
.warn { color: #a40; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: left; white-space: nowrap; }
td:last-child { white-space: normal; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
tr.state-failed td { color: #b00; }
.pager { margin: 0.5em 0; }
</style>
</head>
<body>
<h1>envpack run report</h1>
<p class="summary">${escapeHtml(figures.log)} · ${escapeHtml(figures.backend)} backend · started ${escapeHtml(figures.startedAt)} · ${figures.durationS} s · ${t.total} tasks: ${t.done} done, ${t.failed} failed, ${t.canceled} canceled, ${t.unfinished} unfinished · ${t.attempts} attempts, ${t.retries} ran again (${t.overLabel} over their label, ${t.workerLost} on a lost worker) · ${figures.workers.length} workers${figures.complete ? "" : " · the log has no end: the run was cut short"}.${escapeHtml(drawnNote)}</p>
${warnings === "" ? "" : `<ul>${warnings}</ul>`}
<h2>Tasks per worker slot (coloured by app; outlined red: failed, orange: ran again, grey: unfinished)</h2>
<div class="box" id="timeline-box"><canvas id="timeline"></canvas></div>
<h2>Cores in use per worker: declared (dashed) and measured</h2>
<div class="box"><canvas id="cores"></canvas></div>
<h2>Memory in use per worker: declared (dashed) and measured peaks</h2>
<div class="box"><canvas id="memory"></canvas></div>
<h2>Memory label of each category over time, and the peaks its tasks measured</h2>
<div class="box"><canvas id="labels"></canvas></div>
<h2>Bundles: build on this host, transfer to and unpack on each worker</h2>
<div class="box" style="height: ${Math.max(160, 60 + page.bundles.places.length * 40)}px"><canvas id="bundles"></canvas></div>
<h2>Tasks</h2>
<div class="pager"><button id="prev">previous</button> <span id="page"></span> <button id="next">next</button></div>
<table id="tasks"></table>
<script type="application/json" id="report-data">${json}</script>
<script>${scriptText(chartJs())}</script>
<script>${scriptText(REPORT_PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
