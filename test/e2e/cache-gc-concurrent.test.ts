// `envpack cache gc` beside `envpack build` or `envpack run` on one cache, as processes: a gc started
// while a build runs waits for it, so the build keeps the layers it found cached and gc sees the
// bundle it made; one started while a run's command runs waits for it, so its tree stays.
// The processes are synchronised on FIFOs and the lock's directory, never on time.

import { spawnSync } from "node:child_process";
import { watch } from "node:fs";
import { appendFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

interface Built {
  digest: string;
  layers: Array<{ role: string; cached: boolean }>;
}

/** Resolves once `name` exists in `dir` (watched, then checked, so no creation is missed). */
function appears(dir: string, name: string): Promise<void> & { close(): void } {
  let close = () => {};
  const seen = new Promise<void>((resolve, reject) => {
    const watcher = watch(dir, (_event, file) => {
      if (file === name) resolve();
    });
    watcher.on("error", reject);
    close = () => watcher.close();
    stat(join(dir, name)).then(
      () => resolve(),
      () => {},
    );
  });
  return Object.assign(
    seen.finally(() => close()),
    { close: () => close() },
  );
}

/** The hello app built into a fresh cache, and two FIFOs (ready, go) beside the cache. */
async function builtHello() {
  const app = await appCopy("hello");
  const dir = await tempDir();
  const cacheDir = join(dir, "cache");
  const env = { ENVPACK_CACHE_DIR: cacheDir };
  const v1 = await envpack(["build", "--json", "src/main.ts"], {
    cwd: app,
    env,
  });
  expect(v1.exitCode, v1.stderr).toBe(0);
  const fifos = { ready: join(dir, "ready"), go: join(dir, "go") };
  expect(spawnSync("mkfifo", [fifos.ready, fifos.go]).status).toBe(0);
  return { app, cacheDir, env, v1: JSON.parse(v1.stdout) as Built, ...fifos };
}

/**
 * `envpack cache gc --max-size 0` started on the cache, once it holds its lock and waits for the
 * process holding the cache (or, were there no hold, once it is over).
 */
async function startGc(cacheDir: string, env: Record<string, string>) {
  const holds = join(cacheDir, "holds");
  await mkdir(holds, { recursive: true });
  const locked = appears(holds, "gc.lock");
  const collecting = envpack(["cache", "gc", "--json", "--max-size", "0"], {
    env,
  });
  await Promise.race([locked, collecting]);
  locked.close();
  return { collecting };
}

describe("cache gc beside a running build", () => {
  it("waits for the build: it reuses its cached layers, and gc then removes both bundles", async () => {
    const { app, cacheDir, env, v1, ready, go } = await builtHello();
    await appendFile(join(app, "src", "main.ts"), 'console.log("v2");\n');
    // The build's traced run (during its scan, after its cache checks began) says it is under
    // way, then waits for the test's word.
    const building = envpack(
      [
        "build",
        "--json",
        "--trace",
        "src/main.ts",
        "--",
        "sh",
        "-c",
        'echo ready > "$1"; cat "$2" > /dev/null',
        "sh",
        ready,
        go,
      ],
      { cwd: app, env },
    );
    await readFile(ready);
    const { collecting } = await startGc(cacheDir, env);
    await writeFile(go, "go\n");
    const [v2, gc] = await Promise.all([building, collecting]);
    expect(v2.exitCode, v2.stderr).toBe(0);
    expect(gc.exitCode, gc.stderr).toBe(0);
    const built = JSON.parse(v2.stdout) as Built;
    expect(built.layers.map((l) => [l.role, l.cached])).toEqual([
      ["runtime", true],
      ["packages", true],
      ["app", false],
    ]);
    const removed = (JSON.parse(gc.stdout) as { removed: string[] }).removed;
    expect(removed.sort()).toEqual([built.digest, v1.digest].sort());
  });

  it("waits for a run: the command's tree is there until it ends, then gc removes it", async () => {
    const { cacheDir, env, v1, ready, go } = await builtHello();
    // The command says it runs, waits for the test's word, then needs its bundle's tree.
    const running = envpack(
      [
        "run",
        v1.digest,
        "--",
        "sh",
        "-c",
        'echo ready > "$1"; cat "$2" > /dev/null; test -x "$ENVPACK_ENV/bin/node"',
        "sh",
        ready,
        go,
      ],
      { env },
    );
    await readFile(ready);
    const { collecting } = await startGc(cacheDir, env);
    await writeFile(go, "go\n");
    const [ran, gc] = await Promise.all([running, collecting]);
    expect(ran.exitCode, ran.stderr).toBe(0);
    expect(gc.exitCode, gc.stderr).toBe(0);
    expect((JSON.parse(gc.stdout) as { removed: string[] }).removed).toEqual([
      v1.digest,
    ]);
    await expect(
      stat(join(cacheDir, "envs", v1.digest.slice(7))),
    ).rejects.toMatchObject({ code: "ENOENT" });
  });
});
