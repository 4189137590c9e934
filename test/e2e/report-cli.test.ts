// The run log survives a submitter killed mid-run (SIGKILL): `envpack report` still reports every
// line written; the live status prints plain lines when not on a terminal, nothing with
// progress: false; a file that is not a run log is a coded error.

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

const INDEX = join(import.meta.dirname, "..", "..", "dist", "src", "index.js");

/** A submitter: N one-core command tasks (its work directory the 4th argument) on one local worker; prints "done ID" as each ends. */
const SUBMITTER = `
import { Executor } from ${JSON.stringify(INDEX)};
const [tasks, ms, progress, workDir] = process.argv.slice(2);
const executor = new Executor({
  workers: [{ cores: 1, memory: 1000 }],
  workDir,
  ...(progress === "default" ? {} : { progress: progress === "on" }),
  onEvent: (e) => {
    if (e.type === "task:state" && e.state === "done") console.log("done " + e.id);
  },
});
const sleep = executor.command("sleep $1", { resources: { cores: 1 } });
await Promise.all(Array.from({ length: Number(tasks) }, () => sleep(ms)));
await executor.shutdown();
`;

async function submitter(): Promise<string> {
  const file = join(await tempDir("envpack-submitter-"), "submit.mjs");
  await writeFile(file, SUBMITTER);
  return file;
}

describe("envpack report (CLI)", () => {
  it("reports the log of a submitter killed mid-run: every line it wrote is there", async () => {
    const script = await submitter();
    const dir = await tempDir("envpack-report-kill-");
    const log = join(dir, "run.jsonl");
    const child = execa(
      process.execPath,
      [script, "50", "0.1", "default", join(dir, "work")],
      {
        env: { ENVPACK_RUN_LOG: log, CI: "true" },
        reject: false,
        stdin: "ignore",
      },
    );
    const lines = createInterface({ input: child.stdout });
    let done = 0;
    for await (const line of lines) {
      if (line.startsWith("done ")) done++;
      if (done === 3) break;
    }
    child.kill("SIGKILL");
    const end = await child;
    expect(end.signal).toBe("SIGKILL");
    // Every line the submitter wrote is whole: the events it saw are in the log.
    const text = await readFile(log, "utf8");
    expect(text.endsWith("\n")).toBe(true);
    const records = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; state?: string });
    expect(records[0]).toMatchObject({ type: "run:start", backend: "local" });
    expect(records.some((r) => r.type === "run:end")).toBe(false);
    const logged = records.filter(
      (r) => r.type === "task:state" && r.state === "done",
    ).length;
    expect(logged).toBeGreaterThanOrEqual(3);

    const run = await envpack(["report", log, "--json"]);
    expect(run.exitCode).toBe(0);
    const figures = JSON.parse(run.stdout) as {
      ok: boolean;
      complete: boolean;
      html?: string;
      tasks: { total: number; done: number; unfinished: number };
    };
    expect(figures).toMatchObject({ ok: true, complete: false });
    expect(figures.html).toBeUndefined();
    expect(figures.tasks.total).toBe(50);
    expect(figures.tasks.done).toBe(logged);
    expect(figures.tasks.unfinished).toBe(50 - logged);

    const human = await envpack(["report", log]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain(
      `report written to ${join(dir, "run.html")}`,
    );
    expect(await readFile(join(dir, "run.html"), "utf8")).toMatch(
      /^<!doctype html>/,
    );
  });

  it("prints the status as plain lines off a terminal, and nothing with progress: false", async () => {
    const script = await submitter();
    const work = await tempDir("envpack-status-");
    const on = await execa(process.execPath, [script, "3", "0", "on", work], {
      reject: false,
      stdin: "ignore",
      env: { CI: "" },
    });
    expect(on.exitCode).toBe(0);
    const status = String(on.stderr).trimEnd().split("\n");
    expect(status[status.length - 1]).toMatch(
      /^tasks: 0 waiting, 0 running, 3 done, 0 failed · workers: 1 · [\d.]+ tasks\/s$/,
    );
    expect(String(on.stderr)).not.toContain("\x1b");
    const off = await execa(process.execPath, [script, "3", "0", "off", work], {
      reject: false,
      stdin: "ignore",
    });
    expect(off.exitCode).toBe(0);
    expect(String(off.stderr)).toBe("");
  });

  it("refuses a file that is not a run log (exit 2, coded)", async () => {
    const dir = await tempDir("envpack-report-notlog-");
    await writeFile(join(dir, "x.jsonl"), "hello\nworld\n");
    const run = await envpack(["report", join(dir, "x.jsonl"), "--json"]);
    expect(run.exitCode).toBe(2);
    expect(JSON.parse(run.stdout)).toMatchObject({
      ok: false,
      error: { code: "ENVPACK_INPUT_RUN_LOG_INVALID" },
    });
  });
});
