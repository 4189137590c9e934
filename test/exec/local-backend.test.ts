// The local backend with real child processes: warm module runtimes, crashes, measurement,
// memory and disk enforcement, cancellation, commands, Python, shutdown and bundles.

import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import type {
  EnvpackEvent,
  Resources,
  TaskPayload,
  TaskResult,
  TaskSpec,
} from "../../src/core/index.js";
import {
  LocalBackend,
  detectResources,
  type LocalBackendOptions,
  type WorkerInfo,
} from "../../src/exec/index.js";
import { treeOf } from "../../src/exec/local/proc-tree.js";
import { build } from "../../src/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { tempDir } from "../helpers/temp-dir.js";
import { emptyQueue } from "../helpers/empty-queue.js";

const TASKS = fileURLToPath(
  new URL("../fixtures-exec/tasks.mjs", import.meta.url),
);

const started: LocalBackend[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.shutdown()));
});

/** A started backend over a fresh work directory, and the workers it reported. */
async function backend(
  options: Partial<LocalBackendOptions> = {},
): Promise<{ backend: LocalBackend; workers: WorkerInfo[]; workDir: string }> {
  const workDir = options.workDir ?? (await tempDir("envpack-local-"));
  const b = new LocalBackend({ workers: [{ cores: 2 }], ...options, workDir });
  started.push(b);
  const workers: WorkerInfo[] = [];
  await b.start({
    workerJoined: (w) => workers.push(w),
    workerLeft: () => {},
    ...emptyQueue,
  });
  return { backend: b, workers, workDir };
}

let serial = 0;

function task(payload: TaskPayload, extra: Partial<TaskSpec> = {}): TaskSpec {
  return {
    id: `t${++serial}`,
    category: "default",
    payload,
    resources: {},
    attempt: 0,
    ...extra,
  };
}

function call(exportName: string, ...args: unknown[]): TaskPayload {
  return { kind: "module", module: TASKS, exportName, args };
}

function label(over: Partial<Resources> = {}): Resources {
  return { cores: 2, memory: 4096, disk: 4096, gpus: 0, ...over };
}

function run(
  b: LocalBackend,
  payload: TaskPayload,
  options: { label?: Resources; signal?: AbortSignal; workerId?: string } = {},
): Promise<TaskResult> {
  return b.runTask(
    task(payload),
    {
      workerId: options.workerId ?? "local-1",
      label: options.label ?? label(),
    },
    options.signal ?? new AbortController().signal,
  );
}

/** True while `pid` is a live (not zombie) process. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch (error) {
    // Gone before or while /proc was read.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return false;
    throw error;
  }
}

/** The module runtimes among `pid`'s descendants. */
async function runnersUnder(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const p of treeOf(pid)) {
    const cmdline = await readFile(`/proc/${p}/cmdline`, "utf8").catch(
      () => "",
    );
    if (cmdline.includes("module-runner.mjs")) out.push(p);
  }
  return out;
}

/** Waits until `check` holds (polling), failing after a generous bound. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("condition not reached");
}

describe("LocalBackend", () => {
  it("reports declared workers with their own directories, and detects this machine", async () => {
    const machine = await detectResources(await tempDir());
    expect(machine.cores).toBeGreaterThanOrEqual(1);
    expect(machine.memory).toBeGreaterThan(100);
    expect(machine.disk).toBeGreaterThan(0);
    expect(machine.gpus).toBe(0);

    const { workers, workDir } = await backend({
      workers: [
        { cores: 4, memory: 2048 },
        { id: "small", cores: 1, disk: 10 },
      ],
    });
    expect(workers.map((w) => w.id)).toEqual(["local-1", "small"]);
    expect(workers[0]?.resources).toMatchObject({ cores: 4, memory: 2048 });
    expect(workers[1]?.resources).toMatchObject({
      cores: 1,
      disk: 10,
      gpus: 0,
    });
    expect((await readdir(workDir)).sort()).toEqual(["local-1", "small"]);

    const whole = await backend({ workers: undefined });
    expect(whole.workers).toHaveLength(1);
    expect(whole.workers[0]?.resources.cores).toBe(machine.cores);
  });

  it("runs module tasks in one warm runtime: the second task reuses its pid, console output does not disturb the protocol", async () => {
    const { backend: b, workDir } = await backend();
    const first = await run(b, call("whoami", "a"));
    const second = await run(b, call("whoami", "b"));
    expect(first).toMatchObject({ ok: true, reason: "ok", protocol: 1 });
    expect(second.ok).toBe(true);
    const a = first.value as { pid: number; cwd: string; tag: string };
    const b2 = second.value as { pid: number; cwd: string; tag: string };
    expect(a.tag).toBe("a");
    expect(b2.tag).toBe("b");
    expect(b2.pid).toBe(a.pid);
    expect(b.runtimePids()).toEqual([a.pid]);
    expect(a.pid).not.toBe(process.pid);
    // Its cwd is a sandbox inside the worker's directory.
    expect(a.cwd.startsWith(join(workDir, "local-1"))).toBe(true);
    expect(first.usage.wallMs).toBeGreaterThan(0);
    expect(first.workerId).toBe("local-1");
  });

  it("keeps a runtime per task environment, and at most two idle per core on a worker", async () => {
    const { backend: b, workDir } = await backend({ workers: [{ cores: 1 }] });
    const inEnv = async (flavour: string) => {
      const r = await b.runTask(
        task(call("whoami", flavour), { env: { FLAVOUR: flavour } }),
        { workerId: "local-1", label: label({ cores: 1 }) },
        new AbortController().signal,
      );
      expect(r.ok).toBe(true);
      return (r.value as { pid: number }).pid;
    };
    const a = await inEnv("a");
    const b1 = await inEnv("b");
    expect(b1).not.toBe(a);
    expect(await inEnv("a")).toBe(a);
    const c = await inEnv("c");
    // Three environments, two idle at most: the least recently used (b) was retired.
    await until(async () => !(await alive(b1)) && b.runtimePids().length === 2);
    expect(b.runtimePids().sort()).toEqual([a, c].sort());
    await until(
      async () =>
        (await readdir(join(workDir, "local-1", "sandbox"))).length === 2,
    );
    expect(await inEnv("b")).not.toBe(b1);
  });

  it("without reuse, each module task gets a fresh process that is gone afterwards", async () => {
    const { backend: b } = await backend({ reuseRuntimes: false });
    const first = await run(b, call("whoami", "a"));
    const second = await run(b, call("whoami", "b"));
    const pids = [first, second].map((r) => (r.value as { pid: number }).pid);
    expect(pids[0]).not.toBe(pids[1]);
    for (const pid of pids) expect(await alive(pid)).toBe(false);
    expect(b.runtimePids()).toEqual([]);
  });

  it("an app that throws fails only its task with the remote error; a non-JSON result is an error too", async () => {
    const { backend: b } = await backend();
    const failed = await run(b, call("fail", "no such thing"));
    expect(failed).toMatchObject({
      ok: false,
      reason: "exit",
      error: { name: "RangeError", message: "no such thing" },
    });
    expect(failed.error?.stack).toContain("tasks.mjs");
    const notJson = await run(b, call("notJson"));
    expect(notJson).toMatchObject({ ok: false, reason: "exit" });
    expect(notJson.error?.message).toMatch(/JSON/);
    const missing = await run(b, call("noSuchExport"));
    expect(missing).toMatchObject({ ok: false, error: { name: "TypeError" } });
    // The runtime survived all three.
    expect(b.runtimePids()).toHaveLength(1);
  });

  it("a crash fails only that task with the exit and stderr tail; the runtime is replaced", async () => {
    const { backend: b } = await backend();
    const before = (await run(b, call("whoami", "x"))).value as { pid: number };
    await run(b, call("chatter", "earlier noise"));
    const crashed = await run(b, call("crash"));
    expect(crashed).toMatchObject({ ok: false, reason: "exit", exitCode: 3 });
    // The crash's own words end the tail (an earlier task's stderr can arrive late on the pipe).
    expect(crashed.stderrTail).toMatch(/about to crash$/);
    const after = await run(b, call("whoami", "y"));
    expect(after.ok).toBe(true);
    expect((after.value as { pid: number }).pid).not.toBe(before.pid);
    expect(await alive(before.pid)).toBe(false);
  });

  it("measures a module task's peak memory and a command's whole process tree", async () => {
    const { backend: b } = await backend();
    const held = await run(b, call("alloc", 120, 400));
    expect(held.ok).toBe(true);
    expect(held.usage.peakMemory).toBeGreaterThanOrEqual(120);

    // A shell whose child allocates: the tree, not the shell, holds the memory.
    const node = process.execPath;
    const tree = await run(b, {
      kind: "command",
      shell: `"${node}" -e 'const b = Buffer.alloc(100 * 1048576).fill(1); setTimeout(() => console.log(b.length), 400)'`,
    });
    expect(tree).toMatchObject({ ok: true, value: { exitCode: 0 } });
    expect(tree.usage.peakMemory).toBeGreaterThanOrEqual(100);
  });

  it("measures cores as CPU time over the task's own wall time: two busy threads cost twice one", async () => {
    // Fixed work, so CPU time does not depend on what else this shared machine runs; cores =
    // CPU time / wall time is then about 2 on two free cores and less on a busy machine.
    const { backend: b } = await backend();
    const one = await run(b, call("burn", 1, 200_000_000));
    const two = await run(b, call("burn", 2, 200_000_000));
    expect(two.ok).toBe(true);
    expect(two.usage.cpuMs).toBeGreaterThan(one.usage.cpuMs * 1.5);
    expect(two.usage.cpuMs).toBeLessThan(one.usage.cpuMs * 2.6);
    expect(two.usage.cores).toBeCloseTo(two.usage.cpuMs / two.usage.wallMs, 5);
    // The runtime's start is not in the task's wall time.
    expect(one.usage.wallMs).toBeLessThan(one.durationMs);

    // Two processes of a command: sampled from /proc over the whole tree.
    const { BURN } = (await import(TASKS)) as { BURN: string };
    const script = `const N = 200000000; ${BURN}`;
    const node = process.execPath;
    const single = await run(b, {
      kind: "command",
      argv: [node, "-e", script],
    });
    const pair = await run(b, {
      kind: "command",
      shell: `"${node}" -e '${script}' & "${node}" -e '${script}'; wait`,
    });
    expect(pair.ok).toBe(true);
    expect(pair.usage.cpuMs).toBeGreaterThan(single.usage.cpuMs * 1.5);
    expect(pair.usage.cores).toBeCloseTo(
      pair.usage.cpuMs / pair.usage.wallMs,
      5,
    );
  });

  it("kills a module task over its memory label with over-resources and starts a new runtime", async () => {
    const { backend: b } = await backend();
    const before = (await run(b, call("whoami", "x"))).value as { pid: number };
    const over = await run(b, call("alloc", 400, 3000), {
      label: label({ memory: 200 }),
    });
    expect(over).toMatchObject({
      ok: false,
      reason: "over-resources",
      exceeded: "memory",
    });
    expect(over.usage.peakMemory).toBeGreaterThan(200);
    expect(await alive(before.pid)).toBe(false);
    const after = await run(b, call("whoami", "y"));
    expect(after.ok).toBe(true);
    expect((after.value as { pid: number }).pid).not.toBe(before.pid);
  });

  it("kills a command writing past its disk label, and removes its sandbox", async () => {
    const { backend: b, workDir } = await backend();
    const over = await run(
      b,
      {
        kind: "command",
        shell:
          "for i in $(seq 1 100); do head -c 1048576 /dev/zero > part-$i; sleep 0.05; done",
      },
      { label: label({ disk: 10 }) },
    );
    expect(over).toMatchObject({
      ok: false,
      reason: "over-resources",
      exceeded: "disk",
    });
    expect(over.usage.disk).toBeGreaterThan(10);
    expect(await readdir(join(workDir, "local-1", "sandbox"))).toEqual([]);
  });

  it("kills a module task writing past its disk label and frees what it wrote", async () => {
    const { backend: b, workDir } = await backend();
    const over = await run(b, call("writeDisk", 100, 30), {
      label: label({ disk: 10 }),
    });
    expect(over).toMatchObject({ reason: "over-resources", exceeded: "disk" });
    // Nothing the killed task wrote stays on the worker.
    const sandboxes = join(workDir, "local-1", "sandbox");
    for (const name of await readdir(sandboxes))
      expect(await readdir(join(sandboxes, name))).toEqual([]);
    const within = await run(b, call("writeDisk", 3, 0), {
      label: label({ disk: 10 }),
    });
    expect(within.ok).toBe(true);
    expect(within.usage.disk).toBeGreaterThanOrEqual(3);
    // The warm runtime's sandbox is emptied after every task.
    const [kept, ...more] = await readdir(sandboxes);
    expect(more).toEqual([]);
    expect(await readdir(join(sandboxes, kept ?? ""))).toEqual([]);
  });

  it("cancels module and command tasks through the signal, also when it fired before the run", async () => {
    const { backend: b } = await backend();
    const controller = new AbortController();
    const module = run(b, call("sleep", 30_000), { signal: controller.signal });
    const command = run(
      b,
      { kind: "command", argv: ["sleep", "30"] },
      { signal: controller.signal },
    );
    await until(async () => b.runtimePids().length === 1);
    setTimeout(() => controller.abort(), 200);
    const [m, c] = await Promise.all([module, command]);
    expect(m).toMatchObject({ ok: false, reason: "canceled" });
    expect(c).toMatchObject({ ok: false, reason: "canceled" });

    const early = AbortSignal.abort();
    const skipped = await run(b, call("whoami", "late"), { signal: early });
    expect(skipped).toMatchObject({ ok: false, reason: "canceled" });
    const skippedCommand = await run(
      b,
      { kind: "command", argv: ["true"] },
      { signal: early },
    );
    expect(skippedCommand).toMatchObject({ ok: false, reason: "canceled" });
  });

  it("runs commands without a shell or through /bin/sh, with exit code, stdout and stderr tail", async () => {
    const { backend: b } = await backend();
    const argv = await run(b, {
      kind: "command",
      argv: ["echo", "a b", "$HOME"],
    });
    expect(argv).toMatchObject({
      ok: true,
      reason: "ok",
      value: { exitCode: 0, stdout: "a b $HOME\n" },
    });
    const shell = await run(b, {
      kind: "command",
      shell: "echo out; echo oops >&2; exit 7",
    });
    expect(shell).toMatchObject({
      ok: false,
      reason: "exit",
      exitCode: 7,
      stderrTail: "oops",
      value: { exitCode: 7, stdout: "out\n" },
    });
    const missing = await run(b, {
      kind: "command",
      argv: ["/no/such/program"],
    });
    expect(missing).toMatchObject({ ok: false, reason: "exit" });
    const env = await b.runTask(
      task(
        { kind: "command", shell: 'printf %s "$GREETING"; pwd' },
        { env: { GREETING: "hi" } },
      ),
      { workerId: "local-1", label: label() },
      new AbortController().signal,
    );
    const [greeting, cwd] = (env.value as { stdout: string }).stdout.split(
      /(?<=hi)/,
    );
    expect(greeting).toBe("hi");
    expect(cwd?.trim()).toContain(join("local-1", "sandbox"));
  });

  it("runs Python functions with JSON arguments, reports their exceptions, kills one over its memory label", async () => {
    const { backend: b } = await backend();
    const dir = await tempDir();
    const file = join(dir, "tasks.py");
    await writeFile(
      file,
      "import os\ndef add(a, b):\n    return {'sum': a + b, 'cwd': os.getcwd()}\n" +
        "def boom():\n    raise KeyError('nope')\n" +
        "def chatty():\n    print('noise')\n    return 1\n" +
        "def hold(mb):\n    import time\n    b = bytes([1]) * (mb << 20)\n    time.sleep(5)\n    return len(b)\n",
    );
    const added = await run(b, {
      kind: "python",
      file,
      functionName: "add",
      args: [2, 3],
    });
    expect(added).toMatchObject({ ok: true, value: { sum: 5 } });
    expect((added.value as { cwd: string }).cwd).toContain("sandbox");
    const boom = await run(b, {
      kind: "python",
      file,
      functionName: "boom",
      args: [],
    });
    expect(boom).toMatchObject({
      ok: false,
      reason: "exit",
      error: { name: "KeyError" },
    });
    expect(boom.error?.stack).toContain("raise KeyError");
    const chatty = await run(b, {
      kind: "python",
      file,
      functionName: "chatty",
      args: [],
    });
    expect(chatty).toMatchObject({ ok: true, value: 1 });
    const over = await run(
      b,
      { kind: "python", file, functionName: "hold", args: [200] },
      { label: label({ memory: 100 }) },
    );
    expect(over).toMatchObject({
      ok: false,
      reason: "over-resources",
      exceeded: "memory",
    });
    expect(over.usage.peakMemory).toBeGreaterThan(100);
  });

  it("shutdown kills runtimes, commands and their children, leaving no process behind", async () => {
    const { backend: b } = await backend();
    const module = run(b, call("withChild", 30_000));
    const spawnMode = await backend({ reuseRuntimes: false });
    const fresh = run(spawnMode.backend, call("withChild", 30_000));
    const command = run(b, {
      kind: "command",
      shell: "sleep 30 & sleep 30; wait",
    });
    // Every task's tree is up: two runtimes with a sleep child each, the shell and its two sleeps.
    let pids: number[] = [];
    await until(() => {
      pids = treeOf(process.pid).filter((pid) => pid !== process.pid);
      return pids.length >= 7;
    });
    await Promise.all([b.shutdown(), spawnMode.backend.shutdown()]);
    const results = await Promise.all([module, fresh, command]);
    for (const r of results)
      expect(r).toMatchObject({ ok: false, reason: "canceled" });
    // A closed backend starts nothing more.
    expect(await run(b, call("whoami", "late"))).toMatchObject({
      reason: "canceled",
    });
    await until(async () => {
      for (const pid of pids) if (await alive(pid)) return false;
      return true;
    });
    expect(b.runtimePids()).toEqual([]);
  });

  it("a bundle whose node cannot start or speaks another protocol fails the task, not the backend; a command finds the bundle's bin first", async () => {
    const { backend: b, workDir } = await backend();
    // An environment already unpacked (its completion marker written), so no bundle file is read.
    const fakeEnv = async (
      hex: string,
      node: string,
    ): Promise<TaskSpec["bundle"]> => {
      const env = join(workDir, "local-1", "envs", hex);
      await mkdir(join(env, ".envpack"), { recursive: true });
      await mkdir(join(env, "bin"));
      await writeFile(join(env, ".envpack", "complete"), "");
      await writeFile(join(env, "bin", "node"), node, { mode: 0o755 });
      await writeFile(
        join(env, "bin", "hello"),
        "#!/bin/sh\necho hello from the bundle\n",
        { mode: 0o755 },
      );
      return {
        digest: `sha256:${hex}`,
        path: join(workDir, "none"),
        kind: "node",
      };
    };
    const broken = await fakeEnv(
      "a".repeat(64),
      "#!/bin/sh\necho broken node >&2\nexit 9\n",
    );
    const other = await fakeEnv(
      "b".repeat(64),
      `#!/bin/sh\nexec "${process.execPath}" -e 'process.send({ type: "ready", protocol: 99 }); setInterval(() => {}, 1000)'\n`,
    );
    const runIn = (bundle: TaskSpec["bundle"], payload: TaskPayload) =>
      b.runTask(
        task(payload, { bundle }),
        { workerId: "local-1", label: label() },
        new AbortController().signal,
      );
    const module: TaskPayload = {
      kind: "module",
      module: "app/x.mjs",
      exportName: "x",
      args: [],
    };
    const failed = await runIn(broken, module);
    expect(failed).toMatchObject({
      ok: false,
      reason: "exit",
      error: { name: "RuntimeStartError" },
    });
    expect(failed.error?.message).toContain("broken node");
    const mismatch = await runIn(other, module);
    expect(mismatch).toMatchObject({ ok: false, reason: "exit" });
    expect(mismatch.error?.message).toContain("protocol 99");
    // The runtime that answered with another protocol was not left running.
    await until(() => treeOf(process.pid).length === 1);
    const hello = await runIn(broken, { kind: "command", argv: ["hello"] });
    expect(hello).toMatchObject({
      ok: true,
      value: { stdout: "hello from the bundle\n" },
    });
  });

  it("a shutdown while runtimes are starting cancels their tasks and leaves none running", async () => {
    const { backend: b } = await backend({ workers: [{ cores: 4 }] });
    const pending = [1, 2, 3].map((i) => run(b, call("whoami", `t${i}`)));
    // Let the spawns begin, so shutdown meets runtimes still starting.
    await until(() => treeOf(process.pid).length > 1);
    await b.shutdown();
    expect(treeOf(process.pid)).toEqual([process.pid]);
    for (const r of await Promise.all(pending))
      expect(r).toMatchObject({ ok: false, reason: "canceled" });
    expect(treeOf(process.pid)).toEqual([process.pid]);
  });

  it("unpacks a bundle once per worker under concurrent tasks and runs it with the bundle's node", async () => {
    const app = await appCopy("exec-tasks");
    const cacheDir = join(await tempDir("envpack-exec-cache-"), "cache");
    vi.stubEnv("ENVPACK_CACHE_DIR", cacheDir);
    const built = await build({
      entries: [join(app, "src", "tasks.ts")],
      cwd: app,
      cacheDir,
    });
    const events: EnvpackEvent[] = [];
    const { backend: b, workDir } = await backend({
      workers: [{ cores: 2 }, { id: "other", cores: 2 }],
      onEvent: (e) => events.push(e),
    });
    const bundle = { digest: built.digest, path: built.path, kind: built.kind };
    const results = await Promise.all(
      ["local-1", "local-1", "local-1", "other", "other"].map((workerId) =>
        b.runTask(
          task(
            { kind: "module", module: "", exportName: "runtimeInfo", args: [] },
            { bundle },
          ),
          { workerId, label: label() },
          new AbortController().signal,
        ),
      ),
    );
    for (const r of results) expect(r).toMatchObject({ ok: true });
    const starts = events.filter(
      (e) =>
        e.type === "build:progress" && e.phase === "unpack" && e.bytes === 0,
    );
    // Each layer of the bundle once per worker (two workers), however many tasks used it.
    expect(built.layers.length).toBeGreaterThan(1);
    expect(starts).toHaveLength(2 * built.layers.length);
    const hex = built.digest.slice("sha256:".length);
    for (const r of results) {
      const info = r.value as { execPath: string; dependency: string };
      const env = join(workDir, r.workerId, "envs", hex);
      expect(info.execPath).toBe(join(env, "bin", "node"));
      // From this worker's unpacked bundle: its tree, or the packages layer a directory of the
      // tree links to (envs/layers/<hex>), never the project's node_modules.
      expect(
        info.dependency.startsWith(join(workDir, r.workerId, "envs")),
      ).toBe(true);
    }
    await b.shutdown();

    // A shutdown while the bundle unpacks: the task is canceled and no runtime starts after it.
    let unpacking!: () => void;
    const started = new Promise<void>((resolve) => (unpacking = resolve));
    const late = await backend({
      onEvent: (e) => {
        if (e.type === "build:progress" && e.phase === "unpack") unpacking();
      },
    });
    const pending = late.backend.runTask(
      task(
        { kind: "module", module: "", exportName: "noop", args: [] },
        { bundle },
      ),
      { workerId: "local-1", label: label() },
      new AbortController().signal,
    );
    await started;
    await late.backend.shutdown();
    expect(await pending).toMatchObject({ ok: false, reason: "canceled" });
    // (build() leaves esbuild's service running: only runtimes count here.)
    expect(await runnersUnder(process.pid)).toEqual([]);
  });
});
