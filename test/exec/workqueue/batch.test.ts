// Short command tasks in batches on a real work_queue_worker: each task its own exit code,
// stdout and stderr; a failure, a cancel, a killed worker and a memory overrun touch only the
// tasks they should.

import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { TaskResult } from "../../../src/core/index.js";
import type { WorkerInfo } from "../../../src/exec/index.js";
import { tempDir } from "../../helpers/temp-dir.js";
import { processesLeftUnder, startWorker } from "../../helpers/wq-worker.js";
import { harness, type Harness } from "./harness.js";

/** Runs quick tasks of the category until the manager batches it (3 seen, all short). */
async function learn(h: Harness, worker: WorkerInfo): Promise<void> {
  for (let i = 0; i < 3; i++)
    expect((await h.run({ kind: "command", argv: ["true"] }, worker)).ok).toBe(
      true,
    );
}

/**
 * The worker under strace, every setpgid it makes failing: a task is then never its own process
 * group's leader, as when it has exec'd sh before the worker's setpgid(child, 0) (EACCES).
 */
const NO_SETPGID = [
  "strace",
  "-o",
  "/dev/null",
  "-e",
  "trace=setpgid",
  "-e",
  "inject=setpgid:error=EACCES",
];

/**
 * A manager (no monitor) with one 1-core worker whose `true` tasks batch (unless `batch` is
 * false: then each is its own Work Queue task); a temp dir.
 */
async function oneSlot(
  options: {
    keepaliveMs?: number;
    monitor?: boolean;
    wrap?: string[];
    batch?: boolean;
  } = {},
) {
  const { wrap, batch, ...managerOptions } = options;
  const h = await harness({ monitor: false, ...managerOptions });
  const dir = await tempDir();
  const started = await startWorker({ port: h.port, cores: 1, wrap });
  const worker = await h.nextWorker();
  if (batch !== false) await learn(h, worker);
  return { h, dir, worker, started };
}

function tasksSent(h: Harness): number {
  return h.backend.snapshot().workers[0]?.tasksSent ?? 0;
}

/** Resolves once `path` exists (a task says how far it got). */
async function appears(path: string): Promise<void> {
  while (!existsSync(path)) await new Promise((r) => setImmediate(r));
}

/** Resolves once a file named like `name` is in the cache of the worker started in `workDir`. */
async function cached(workDir: string, name: RegExp): Promise<void> {
  const [workspace] = (await readdir(workDir)).filter((n) =>
    n.startsWith("worker-"),
  );
  const cache = join(workDir, workspace as string, "cache");
  while (!(await readdir(cache)).some((n) => name.test(n)))
    await new Promise((r) => setImmediate(r));
}

/** A shell line that waits until `path` exists. */
const waitFor = (path: string) =>
  `while [ ! -e '${path}' ]; do sleep 0.05; done`;

describe("WorkQueueBackend command batches", () => {
  it("gives each task of a batch its own exit code, stdout and stderr; a failure stays its own", async () => {
    const h = await harness({ monitor: false });
    await startWorker({ port: h.port, cores: 1 });
    const worker = await h.nextWorker();
    await learn(h, worker);
    const before = tasksSent(h);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        h.run(
          {
            kind: "command",
            shell:
              i === 5
                ? "kill -TERM $$"
                : `printf 'out %s\\n' ${i}; echo err ${i} >&2; exit ${i % 3 === 2 ? 3 : 0}`,
          },
          worker,
        ),
      ),
    );
    // Eight tasks, fewer Work Queue tasks.
    expect(tasksSent(h) - before).toBeLessThan(8);
    results.forEach((result, i) => {
      if (i === 5)
        return expect(result).toMatchObject({
          ok: false,
          reason: "signal",
          signal: "SIGTERM",
        });
      expect(stdoutOf(result)).toBe(`out ${i}\n`);
      if (i % 3 === 2)
        expect(result).toMatchObject({
          ok: false,
          reason: "exit",
          exitCode: 3,
          stderrTail: `err ${i}`,
        });
      else expect(result).toMatchObject({ ok: true, value: { exitCode: 0 } });
    });
  });

  it("skips a canceled task that waits its turn; the others run", async () => {
    const { h, dir, worker, started } = await oneSlot();
    const abort = new AbortController();
    const first = h.run(
      {
        kind: "command",
        shell: `touch '${dir}/a-started'; ${waitFor(`${dir}/go`)}; echo a`,
      },
      worker,
    );
    const skipped = h.run(
      { kind: "command", shell: `touch '${dir}/b-ran'` },
      worker,
      { signal: abort.signal },
    );
    const last = h.run({ kind: "command", shell: "echo c" }, worker);
    // A fourth and fifth make two batches of the waiting tasks (one per place on a 1-core worker).
    const more = [1, 2].map(() =>
      h.run({ kind: "command", argv: ["true"] }, worker),
    );
    await appears(`${dir}/a-started`);
    abort.abort();
    expect(await skipped).toMatchObject({ ok: false, reason: "canceled" });
    // The worker has its skip file (cancel-ID-2) before the first task lets the second start.
    await cached(started.dir, /^cancel-\d+-2$/);
    await writeFile(`${dir}/go`, "");
    expect(await first).toMatchObject({ ok: true, value: { stdout: "a\n" } });
    expect(await last).toMatchObject({ ok: true, value: { stdout: "c\n" } });
    for (const r of await Promise.all(more)) expect(r.ok).toBe(true);
    expect(existsSync(`${dir}/b-ran`)).toBe(false);
  });

  it("kills a canceled task that runs: the tasks after it in its batch come back worker-lost", async () => {
    const { h, dir, worker } = await oneSlot();
    const abort = new AbortController();
    const running = h.run(
      {
        kind: "command",
        shell: `echo $$ >'${dir}/pid'; touch '${dir}/started'; sleep 300`,
      },
      worker,
      { signal: abort.signal },
    );
    const after = [1, 2, 3].map((i) =>
      h.run({ kind: "command", shell: `touch '${dir}/ran-${i}'` }, worker),
    );
    await appears(`${dir}/started`);
    abort.abort();
    expect(await running).toMatchObject({ ok: false, reason: "canceled" });
    const results: TaskResult[] = await Promise.all(after);
    // The batch held the canceled task and the one after it; the other batch ran.
    const lost = results.filter((r) => r.reason === "worker-lost");
    expect(lost.length).toBeGreaterThan(0);
    for (const r of results) expect(["ok", "worker-lost"]).toContain(r.reason);
    const pid = Number((await readFile(`${dir}/pid`, "utf8")).trim());
    await expect(alive(pid)).resolves.toBe(false);
  });

  it.each([
    { batch: true, monitor: false },
    { batch: true, monitor: true },
    { batch: false, monitor: false },
  ])(
    "kills a canceled running task whose shell leads no process group, and its children (%o)",
    async ({ batch, monitor }) => {
      const { h, dir, worker, started } = await oneSlot({
        batch,
        monitor,
        wrap: NO_SETPGID,
      });
      const abort = new AbortController();
      const running = h.run(
        {
          kind: "command",
          // Up from itself to the shell the worker started: that shell's group.
          shell:
            `sleep 300 & p=$$; while read -r _ _ _ pp g _ </proc/$p/stat; ` +
            `[ "$(cat /proc/$pp/comm)" != work_queue_work ]; do p=$pp; done; ` +
            `echo $g >'${dir}/pgid'; touch '${dir}/started'; wait`,
        },
        worker,
        { signal: abort.signal },
      );
      const after = [1, 2, 3].map(() =>
        h.run({ kind: "command", argv: ["true"] }, worker),
      );
      await appears(`${dir}/started`);
      // That shell is in the worker's own group (as are strace and this process).
      const stat = await readFile(`/proc/${started.pid}/stat`, "utf8");
      expect((await readFile(`${dir}/pgid`, "utf8")).trim()).toBe(
        stat.slice(stat.lastIndexOf(") ") + 2).split(" ")[2],
      );
      abort.abort();
      expect(await running).toMatchObject({ ok: false, reason: "canceled" });
      for (const r of await Promise.all(after))
        expect(["ok", "worker-lost"]).toContain(r.reason);
      // The worker answers again: its kill is done.
      expect(
        (await h.run({ kind: "command", argv: ["true"] }, worker)).ok,
      ).toBe(true);
      await h.backend.shutdown();
      await started.exited;
      expect(await processesLeftUnder(started.dir)).toEqual([]);
    },
  );

  it("keeps the results of a killed worker's finished batch members; only the others are lost", async () => {
    const { h, dir, worker, started } = await oneSlot({ keepaliveMs: 600_000 });
    // Six tasks on one slot: two batches of three, the first blocked on its third.
    const shells = [
      "echo one",
      "echo two",
      `touch '${dir}/third'; ${waitFor(`${dir}/never`)}`,
      "echo four",
      "echo five",
      "echo six",
    ];
    const runs = shells.map((shell) =>
      h.run({ kind: "command", shell }, worker),
    );
    const [one, two] = await Promise.all(runs.slice(0, 2));
    expect(one).toMatchObject({ ok: true, value: { stdout: "one\n" } });
    expect(two).toMatchObject({ ok: true, value: { stdout: "two\n" } });
    await appears(`${dir}/third`);
    const gone = h.left(worker.id);
    process.kill(started.pid, "SIGKILL");
    await gone;
    for (const result of await Promise.all(runs.slice(2)))
      expect(result).toMatchObject({ ok: false, reason: "worker-lost" });
  });

  it("measures each member under resource_monitor: one over its memory label, the others fine", async () => {
    const h = await harness();
    await startWorker({ port: h.port, cores: 1 });
    const worker = await h.nextWorker();
    await learn(h, worker);
    const label = { memory: 50 };
    const results = await Promise.all([
      h.run({ kind: "command", shell: "echo before" }, worker, { label }),
      h.run(
        {
          kind: "command",
          shell: `python3 -c "import time; b=bytearray(300<<20); time.sleep(3)"`,
        },
        worker,
        { label },
      ),
      h.run({ kind: "command", shell: "echo after; exit 4" }, worker, {
        label,
      }),
      h.run({ kind: "command", argv: ["true"] }, worker, { label }),
    ]);
    expect(results[0]).toMatchObject({
      ok: true,
      value: { stdout: "before\n" },
    });
    expect(results[1]).toMatchObject({
      ok: false,
      reason: "over-resources",
      exceeded: "memory",
    });
    expect(results[1]?.usage.peakMemory).toBeGreaterThan(50);
    expect(results[2]).toMatchObject({
      ok: false,
      reason: "exit",
      exitCode: 4,
      value: { stdout: "after\n" },
    });
    expect(results[3]).toMatchObject({ ok: true });
  });
});

function stdoutOf(result: TaskResult): string | undefined {
  return (result.value as { stdout?: string } | undefined)?.stdout;
}

/** Whether a process is still there (zombies are gone for this purpose). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(join("/proc", String(pid), "stat"), "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}
