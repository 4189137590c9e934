#!/usr/bin/env node
// `npm run report:example`: runs a small mixed workload on two local workers with a run log,
// turns the log into a report with `envpack report`, and screenshots the page (headless Chromium,
// /usr/bin/chromium) into docs/report.png, the picture the README shows.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const repo = fileURLToPath(new URL("..", import.meta.url));
const { Executor } = await import(join(repo, "dist", "src", "index.js"));
const dir = mkdtempSync(join(tmpdir(), "envpack-report-example-"));
try {
  const app = join(dir, "work.mjs");
  writeFileSync(
    app,
    `import { setTimeout as delay } from "node:timers/promises";
export async function simulate(ms, mb) {
  const block = Buffer.alloc(mb * 1024 * 1024, 1);
  await delay(ms);
  return block.length;
}
export async function analyse(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x++;
  return x;
}
export function broken() {
  throw new Error("input file missing");
}
`,
  );
  const log = join(dir, "run.jsonl");
  const executor = new Executor({
    workers: [
      { id: "node-a", cores: 4, memory: 4000 },
      { id: "node-b", cores: 2, memory: 2000 },
    ],
    pack: true,
    autolabel: true,
    cacheDir: join(dir, "cache"),
    log,
  });
  const simulate = executor.app(app, "simulate");
  const analyse = executor.app(app, "analyse", { resources: { cores: 1, memory: 300 } });
  const broken = executor.app(app, "broken", { resources: { cores: 1, memory: 200 } });
  await simulate(400, 80);
  await Promise.allSettled([
    ...Array.from({ length: 10 }, (_, i) => simulate(300 + 80 * i, 40 + 5 * i)),
    simulate(900, 400),
    ...Array.from({ length: 16 }, (_, i) => analyse(150 + 40 * (i % 5))),
    broken(),
  ]);
  await executor.shutdown();

  const html = join(dir, "report.html");
  const cli = join(repo, "dist", "src", "cli", "main.js");
  const made = spawnSync(process.execPath, [cli, "report", log, "-o", html], { stdio: "inherit" });
  if (made.status !== 0) process.exit(made.status ?? 1);

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`file://${html}`);
    await page.waitForFunction('document.body.dataset.ready === "1"');
    const out = join(repo, "docs", "report.png");
    await page.screenshot({ path: out, fullPage: true });
    console.log(`screenshot written to ${out}`);
  } finally {
    await browser.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
