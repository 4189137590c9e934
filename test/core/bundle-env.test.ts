// The environment of a process inside a bundle is defined once (src/core/bundle-env.ts); the
// places that start such a process — `envpack run` and runtime/envpack-run, a sh script that
// cannot import it — give exactly that environment.

import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { BUNDLE_ENV_CLEARED, bundleEnv } from "../../src/core/index.js";
import { run } from "../../src/api/index.js";
import { tempDir } from "../helpers/temp-dir.js";

const RUNNER = join(import.meta.dirname, "..", "..", "runtime", "envpack-run");

/** What the shell itself sets in every process it starts: not part of the definition. */
const SHELL_OWN = new Set(["PWD", "OLDPWD", "SHLVL", "_"]);

/** A minimal bundle (a bin/ directory and nothing to run) named by its digest. */
async function tinyBundle(dir: string): Promise<string> {
  const tree = join(dir, "tree");
  await mkdir(join(tree, "bin"), { recursive: true });
  await writeFile(join(tree, "bin", "marker"), "");
  const tmp = join(dir, "bundle.tar.zst");
  await execa("sh", [
    "-c",
    `tar -cf - -C "$1" bin | zstd -q -o "$2"`,
    "sh",
    tree,
    tmp,
  ]);
  const hex = createHash("sha256")
    .update(await readFile(tmp))
    .digest("hex");
  const file = join(dir, `${hex}.tar.zst`);
  await rename(tmp, file);
  return file;
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of text.split("\0")) {
    const at = entry.indexOf("=");
    if (at > 0 && !SHELL_OWN.has(entry.slice(0, at)))
      out[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return out;
}

function defined(
  env: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env))
    if (v !== undefined && !SHELL_OWN.has(k)) out[k] = v;
  return out;
}

describe("bundleEnv", () => {
  it("puts the bundle's bin first, names the bundle, clears the host's module paths", () => {
    const base = {
      PATH: "/usr/bin:/bin",
      HOME: "/home/u",
      NODE_PATH: "/host/node_modules",
      NODE_OPTIONS: "--require /host/hook.js",
      PYTHONPATH: "/host/site",
      PYTHONHOME: "/host/python",
    };
    expect(bundleEnv(base, "/envs/abc")).toEqual({
      PATH: "/envs/abc/bin:/usr/bin:/bin",
      HOME: "/home/u",
      ENVPACK_ENV: "/envs/abc",
    });
    // No PATH at all: no empty entry (which would mean the current directory).
    expect(bundleEnv({}, "/e")["PATH"]).toBe("/e/bin");
    expect(BUNDLE_ENV_CLEARED).toContain("NODE_PATH");
  });

  it("runtime/envpack-run gives a command exactly bundleEnv's environment", async () => {
    const dir = await tempDir();
    const bundle = await tinyBundle(dir);
    const base = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: dir,
      ENVPACK_WORKER_CACHE: join(dir, "cache"),
      NODE_PATH: "/host/node_modules",
      NODE_OPTIONS: "--require /host/hook.js",
      PYTHONPATH: "/host/site",
      PYTHONHOME: "/host/python",
      KEEP_ME: "yes",
    };
    const ran = await execa(RUNNER, [bundle, "--", "env", "-0"], {
      env: base,
      extendEnv: false,
      cwd: dir,
    });
    const seen = parseEnv(ran.stdout);
    const envDir = seen["ENVPACK_ENV"] as string;
    expect(envDir).toMatch(/\/envs\/[0-9a-f]{64}$/);
    expect(seen).toEqual(defined(bundleEnv(base, envDir)));
  });

  it("envpack run gives a command exactly bundleEnv's environment", async () => {
    const dir = await tempDir();
    const bundle = await tinyBundle(dir);
    const out = join(dir, "env.out");
    const host = {
      NODE_PATH: "/host/node_modules",
      PYTHONPATH: "/host/site",
    };
    const saved = { ...process.env };
    Object.assign(process.env, host);
    try {
      const result = await run({
        bundle,
        command: ["sh", "-c", 'env -0 > "$1"', "sh", out],
        cacheDir: join(dir, "cache"),
        cwd: dir,
      });
      expect(result.exitCode).toBe(0);
      const seen = parseEnv(await readFile(out, "utf8"));
      expect(seen).toEqual(defined(bundleEnv(process.env, result.env)));
      expect(seen["NODE_PATH"]).toBeUndefined();
    } finally {
      for (const key of Object.keys(host))
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
    }
  });
});
