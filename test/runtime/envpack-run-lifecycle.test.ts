// runtime/envpack-run around its unpack: a signal aborts it (no half tree, exit 130/143, the
// command never runs), a killed safety listing fails closed, leftovers of a killed run are
// removed, and a lock whose holder never wrote its pid is taken over.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { rawBundle, writeZeroFileBundle } from "../helpers/hostile-tar.js";
import { withTmpfs } from "../helpers/small-fs.js";
import { tempDir } from "../helpers/temp-dir.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");

/** Polls `probe` until it gives a value (a condition, not a duration, ends the wait). */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  for (let i = 0; i < 3000; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await delay(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function sha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest("hex");
}

/** A worker directory with a bundle named by its digest, and where the command would write. */
async function worker(write: (file: string) => Promise<void>, root?: string) {
  root ??= await tempDir("envpack-runner-");
  const built = join(root, "built");
  await write(built);
  const hex = await sha256(built);
  const bundle = join(root, `${hex}.tar.zst`);
  await rename(built, bundle);
  const cache = join(root, "cache");
  const ran = join(root, "ran");
  const start = () =>
    execa(RUNNER, [bundle, "--", "sh", "-c", 'echo ran > "$1"', "sh", ran], {
      env: { ENVPACK_WORKER_CACHE: cache },
      reject: false,
      stdin: "ignore",
    });
  return { root, hex, bundle, envs: join(cache, "envs"), ran, start };
}

/** Pids of live processes whose command line holds `text` (zstd, tar or awk of one run). */
async function processesWith(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(
      () => "",
    );
    if (cmdline.includes(text)) pids.push(Number(name));
  }
  return pids;
}

/** The arguments of a live process, or undefined once it is gone. */
async function argsOf(pid: number): Promise<string[] | undefined> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(
    () => "",
  );
  return cmdline === "" ? undefined : cmdline.split("\0");
}

/**
 * The runner's zstd and tar children while its tar runs with `flag` (read from the runner's
 * own children list, so the probe stays cheap); undefined in any other phase.
 */
async function phaseOf(
  runner: number,
  flag: string,
): Promise<{ zstd: number; tar: number } | undefined> {
  const children = await readFile(
    `/proc/${runner}/task/${runner}/children`,
    "utf8",
  ).catch(() => "");
  let zstd: number | undefined;
  let tar: number | undefined;
  for (const pid of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
    const args = (await argsOf(pid)) ?? [];
    if (args[0]?.endsWith("zstd")) zstd = pid;
    if (args[0]?.endsWith("tar") && args.includes(flag)) tar = pid;
  }
  return zstd !== undefined && tar !== undefined ? { zstd, tar } : undefined;
}

/** The runner's scratch directories (listing, stderr) for bundle `hex`, left in TMPDIR. */
async function scratchDirs(hex: string): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) =>
    name.startsWith(`envpack-run.${hex}.`),
  );
}

const exists = async (path: string) =>
  readdir(path).then(
    () => true,
    () => false,
  );

describe("runtime/envpack-run", () => {
  it.each([
    ["SIGTERM", 143, "--keep-old-files"],
    ["SIGINT", 130, "-tvR"],
  ] as const)(
    "regression: %s during the unpack aborts it: exit %i, no half tree, the command never runs",
    async (signal, exitCode, phase) => {
      const w = await worker((file) =>
        writeZeroFileBundle(file, "zeros", 1 << 30),
      );
      const run = w.start();
      // The listing tar runs with -tvR, the extracting one with --keep-old-files. Its zstd is
      // held stopped while the signal lands, so the phase cannot end first.
      const { zstd } = await waitFor(`tar ${phase}`, () =>
        phaseOf(run.pid as number, phase),
      );
      process.kill(zstd, "SIGSTOP");
      run.kill(signal);
      // zstd may have written its last byte already (a zombie takes SIGSTOP) and been reaped since.
      try {
        process.kill(zstd, "SIGCONT");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
      const result = await run;
      expect(result.exitCode).toBe(exitCode);
      expect(result.stderr).toContain(`interrupted by ${signal}`);
      expect(await exists(w.ran)).toBe(false);
      expect(await readdir(w.envs)).toEqual([]);
      expect(await processesWith(w.hex)).toEqual([]);
      expect(await scratchDirs(w.hex)).toEqual([]);
    },
  );

  it("regression: a safety listing killed half-way fails closed (exit 4, nothing unpacked or run)", async () => {
    const w = await worker((file) =>
      writeZeroFileBundle(file, "zeros", 1 << 30),
    );
    const run = w.start();
    const { tar } = await waitFor("the listing tar", () =>
      phaseOf(run.pid as number, "-tvR"),
    );
    process.kill(tar, "SIGKILL");
    const result = await run;
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(/ENVPACK_INTEGRITY_CORRUPT_ARCHIVE/);
    expect(await exists(w.ran)).toBe(false);
    expect(await readdir(w.envs)).toEqual([]);
    expect(await scratchDirs(w.hex)).toEqual([]);
  });

  it("regression: removes the temp and scratch directories a killed run left behind", async () => {
    const w = await worker(async (file) =>
      writeFile(file, rawBundle([{ path: "a.txt", type: "File", data: "a" }])),
    );
    const left = join(w.envs, `.${w.hex}.999999.tmp`);
    await mkdir(join(left, "tree"), { recursive: true });
    // Its scratch directory (listing, stderr) in TMPDIR, named with its pid (gone).
    await mkdir(join(tmpdir(), `envpack-run.${w.hex}.4194305.AbCdEf`));
    const result = await w.start();
    expect(result.exitCode).toBe(0);
    expect(await readdir(w.envs)).toEqual([w.hex]);
    expect(await scratchDirs(w.hex)).toEqual([]);
    expect(await readFile(w.ran, "utf8")).toBe("ran\n");
  });

  it("regression: takes over a lock whose holder died before writing its pid", async () => {
    const w = await worker(async (file) =>
      writeFile(file, rawBundle([{ path: "a.txt", type: "File", data: "a" }])),
    );
    await mkdir(join(w.envs, `${w.hex}.lock`), { recursive: true });
    const result = await w.start();
    expect(result.exitCode).toBe(0);
    expect(await readdir(w.envs)).toEqual([w.hex]);
  });

  it("takes over a lock whose pid now names another process (a recycled pid)", async () => {
    const w = await worker(async (file) =>
      writeFile(file, rawBundle([{ path: "a.txt", type: "File", data: "a" }])),
    );
    const lock = join(w.envs, `${w.hex}.lock`);
    await mkdir(lock, { recursive: true });
    // This test's own pid is alive, but it did not start at clock tick 1.
    await writeFile(join(lock, "pid"), `${process.pid} 1\n`);
    const result = await w.start();
    expect(result.exitCode).toBe(0);
    expect(await readdir(w.envs)).toEqual([w.hex]);
  });

  it("regression: a full disk is ENVPACK_INPUT_NO_SPACE (exit 5), leaving nothing", async () => {
    const root = await tempDir("envpack-runner-");
    const w = await worker(
      (file) => writeZeroFileBundle(file, "zeros", 8 << 20),
      root,
    );
    const result = await withTmpfs(
      join(root, "cache"),
      { sizeBytes: 1 << 20 },
      async () => {
        const run = await w.start();
        expect(await readdir(w.envs)).toEqual([]);
        return run;
      },
    );
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(
      /envpack-run: ENVPACK_INPUT_NO_SPACE: .*no space left/,
    );
    expect(await exists(w.ran)).toBe(false);
  });
});
