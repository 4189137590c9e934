// Opens a run report in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core
// over the DevTools protocol) and reads back what each chart drew, from Chart.js's own state.

import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";

/** What the page drew and said. */
export interface RenderedReport {
  /** Per canvas id: the elements Chart.js drew (bars, points), summed over visible datasets. */
  marks: Record<string, number>;
  /** Per canvas id: the dataset labels. */
  datasets: Record<string, string[]>;
  /** The timeline's bars: [app (dataset label), kind] (0 ok, 1 failed, 2 ran again, 3 unfinished). */
  bars: [string, number][];
  /** Rows of the task table's first page. */
  rows: string[][];
  /** Console errors and uncaught exceptions of the page, and requests it tried to make. */
  errors: string[];
  requests: string[];
}

/** Run in the page (a string: the test project has no DOM types): Chart.js's state of each chart. */
const READ_CHARTS = `(() => {
  const marks = {};
  const datasets = {};
  for (const canvas of document.querySelectorAll("canvas")) {
    const chart = Chart.getChart(canvas.id);
    if (chart === undefined) continue;
    let n = 0;
    chart.data.datasets.forEach((set, i) => {
      const meta = chart.getDatasetMeta(i);
      if (meta.hidden !== true)
        n += meta.data.filter((_, j) => set.data[j] !== null).length;
    });
    marks[canvas.id] = n;
    datasets[canvas.id] = chart.data.datasets.map((d) => d.label ?? "");
  }
  const bars = [];
  Chart.getChart("timeline")?.data.datasets.forEach((set) => {
    for (const point of set.data) bars.push([set.label ?? "", point.kind]);
  });
  const rows = [...document.querySelectorAll("#tasks tbody tr")].map((tr) =>
    [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""),
  );
  return { marks, datasets, bars, rows };
})()`;

/**
 * Loads `file` (offline: any request but the file itself is recorded and refused), waits for the
 * page script's ready mark, reads the charts, and writes a full-page screenshot to `screenshot`.
 */
export async function renderReport(
  file: string,
  screenshot: string,
): Promise<RenderedReport> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: run scripts/system-deps.sh (Debian's chromium)`,
    );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // As root (CI, containers) Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-gpu"],
    timeout: 60_000,
  });
  try {
    const page = await browser.newPage({
      viewport: { width: 1280, height: 900 },
    });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`exception: ${e.message}`));
    const url = `file://${file}`;
    await page.route("**/*", (route) => {
      if (route.request().url() === url) return route.continue();
      requests.push(route.request().url());
      return route.abort();
    });
    await page.goto(url, { timeout: 60_000 });
    await page.waitForFunction('document.body.dataset.ready === "1"', null, {
      timeout: 30_000,
    });
    const drawn = (await page.evaluate(READ_CHARTS)) as Omit<
      RenderedReport,
      "errors" | "requests"
    >;
    await page.screenshot({ path: screenshot, fullPage: true });
    return { ...drawn, errors, requests };
  } finally {
    await browser.close();
  }
}
