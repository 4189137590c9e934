// `envpack run` against the machine's limits: a bundle that decompresses to 2 GiB unpacks in
// bounded memory (peak RSS measured by /usr/bin/time), a full disk is a coded error, and what a
// SIGKILL leaves behind is cleaned up.

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { BIN, envpack } from "../helpers/cli.js";
import { TWO_GIB, writeZeroFileBundle } from "../helpers/hostile-tar.js";
import { withTmpfs } from "../helpers/small-fs.js";
import { tempDir } from "../helpers/temp-dir.js";

describe("envpack run", () => {
  it("regression: a compressible 2 GiB entry unpacks under 256 MB peak RSS", async () => {
    const root = await tempDir("envpack-run-limits-");
    const bundle = join(root, "zeros.tar.zst");
    await writeZeroFileBundle(bundle, "zeros", TWO_GIB);
    const rss = join(root, "rss");
    const result = await execa(
      "/usr/bin/time",
      [
        "-f",
        "%M",
        "-o",
        rss,
        process.execPath,
        BIN,
        "run",
        bundle,
        "--",
        "true",
      ],
      {
        env: { CI: "true", ENVPACK_CACHE_DIR: join(root, "cache") },
        reject: false,
        stdin: "ignore",
      },
    );
    expect(result.exitCode, String(result.stderr)).toBe(0);
    // %M: the peak resident set of the process, in KiB.
    const peakKiB = Number(
      (await readFile(rss, "utf8")).trim().split("\n").pop(),
    );
    expect(peakKiB).toBeGreaterThan(0);
    expect(peakKiB * 1024).toBeLessThan(256 * 1024 * 1024);
  });

  it("regression: a full disk while unpacking is ENVPACK_INPUT_NO_SPACE (exit 2, no stack)", async () => {
    const root = await tempDir("envpack-run-limits-");
    const bundle = join(root, "zeros.tar.zst");
    await writeZeroFileBundle(bundle, "zeros", 8 << 20);
    const cache = join(root, "cache");
    const result = await withTmpfs(cache, { sizeBytes: 1 << 20 }, () =>
      envpack(["run", bundle, "--json", "--", "true"], {
        env: { ENVPACK_CACHE_DIR: cache },
      }),
    );
    expect(result.exitCode).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ok: false,
      error: {
        code: "ENVPACK_INPUT_NO_SPACE",
        details: { errno: "ENOSPC" },
      },
    });
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("regression: the temp directory and lock of a run killed with SIGKILL are removed by cache gc, and the next run unpacks", async () => {
    const root = await tempDir("envpack-run-limits-");
    const bundle = join(root, "zeros.tar.zst");
    await writeZeroFileBundle(bundle, "zeros", 1 << 30);
    const cache = join(root, "cache");
    const envs = join(cache, "envs");
    const env = { CI: "true", ENVPACK_CACHE_DIR: cache };
    const run = execa(process.execPath, [BIN, "run", bundle, "--", "true"], {
      env,
      reject: false,
      stdin: "ignore",
    });
    // Killed once its temp directory holds the file being written.
    for (let found = false; !found; await delay(20)) {
      const names = await readdir(envs).catch(() => [] as string[]);
      const temp = names.find((name) => name.endsWith(".tmp"));
      found =
        temp !== undefined &&
        (await readdir(join(envs, temp)).catch(() => [])).length > 0;
      if (run.exitCode !== undefined && run.exitCode !== null) break;
    }
    run.kill("SIGKILL");
    await run;
    const left = await readdir(envs);
    expect(left.filter((name) => name.endsWith(".tmp"))).toHaveLength(1);
    expect(left.filter((name) => name.endsWith(".lock"))).toHaveLength(1);

    const gc = await envpack(["cache", "gc", "--max-size", "1G"], { env });
    expect(gc.exitCode).toBe(0);
    expect(await readdir(envs)).toEqual([]);

    const again = await envpack(["run", bundle, "--", "true"], { env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await readdir(envs)).toHaveLength(1);
  });
});
