// Bundles for another Node version and another platform. The node binaries come from the npm
// registry's node-<platform> packages, put in npm's cache by the fixture step: npm runs offline here.

import { open } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { materialiseCase, readCase } from "../helpers/scan-case.js";
import { tempDir } from "../helpers/temp-dir.js";

const OFFLINE = { npm_config_offline: "true" };

describe("envpack build --node / --platform", () => {
  it("bundles another Node version, and the app runs with it", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const env = { ENVPACK_CACHE_DIR: cache, ...OFFLINE };
    const built = await envpack(
      ["build", "--json", "src/main.ts", "--node", "20.18.0"],
      { cwd: app, env },
    );
    expect(built.stderr).not.toMatch(/internal error/);
    expect(built.exitCode).toBe(0);
    const { digest } = JSON.parse(built.stdout) as { digest: string };
    const host = await envpack(["build", "--json", "src/main.ts"], {
      cwd: app,
      env,
    });
    expect((JSON.parse(host.stdout) as { digest: string }).digest).not.toBe(
      digest,
    );
    const ran = await envpack(["run", digest], { cwd: app, env });
    expect(ran.exitCode).toBe(0);
    expect(ran.stdout).toContain("hello, world, from node 20.18.0");
  });

  it("bundles the arm64 node binary for --platform linux-arm64", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const out = join(cache, "out");
    const built = await envpack(
      [
        "build",
        "--json",
        "src/main.ts",
        "--node",
        "20.18.0",
        "--platform",
        "linux-arm64",
        "--out",
        out,
      ],
      {
        cwd: app,
        env: { ENVPACK_CACHE_DIR: cache, ...OFFLINE },
      },
    );
    expect(built.exitCode).toBe(0);
    const { layers } = JSON.parse(built.stdout) as {
      layers: Array<{ role: string; digest: string }>;
    };
    const runtime = layers.find((l) => l.role === "runtime");
    const dest = await tempDir();
    await execa("sh", [
      "-c",
      `zstd -dc "${join(out, `${runtime?.digest.slice(7)}.tar.zst`)}" | tar -xf - -C "${dest}" bin/node`,
    ]);
    const handle = await open(join(dest, "bin", "node"));
    const header = Buffer.alloc(20);
    await handle.read(header, 0, 20, 0);
    await handle.close();
    expect(header.subarray(0, 4)).toEqual(
      Buffer.from([0x7f, 0x45, 0x4c, 0x46]),
    );
    expect(header.readUInt16LE(18)).toBe(0xb7); // EM_AARCH64
  });

  it("fails with the missing per-platform variant named when the target's native package is not installed", async () => {
    const caseDir = join(
      import.meta.dirname,
      "..",
      "..",
      "fixtures",
      "scan",
      "js-native-optional",
    );
    const app = join(await tempDir(), "app");
    await materialiseCase(caseDir, app, await readCase(caseDir));
    const built = await envpack(
      ["build", "--json", "main.js", "--platform", "darwin-arm64"],
      {
        cwd: app,
        env: { ENVPACK_CACHE_DIR: join(await tempDir(), "cache"), ...OFFLINE },
      },
    );
    expect(built.exitCode).toBe(2);
    const doc = JSON.parse(built.stdout) as {
      error: { code: string; message: string; hint: string };
    };
    expect(doc.error.code).toBe("ENVPACK_INPUT_TARGET_VARIANT_MISSING");
    expect(doc.error.message).toContain("@napi-thing/darwin-arm64");
    expect(doc.error.message).toContain("napi-thing@4.0.0");
    expect(doc.error.hint).toContain("--os=darwin --cpu=arm64");
  });

  it("rejects a malformed version or platform with a usage error", async () => {
    const app = await appCopy("hello");
    const env = {
      ENVPACK_CACHE_DIR: join(await tempDir(), "cache"),
      ...OFFLINE,
    };
    const runs = await Promise.all([
      envpack(["build", "--json", "src/main.ts", "--node", "twenty"], {
        cwd: app,
        env,
      }),
      envpack(["build", "--json", "src/main.ts", "--platform", "amiga-68k"], {
        cwd: app,
        env,
      }),
    ]);
    expect(runs.map((r) => r.exitCode)).toEqual([2, 2]);
    expect(
      runs.map(
        (r) => (JSON.parse(r.stdout) as { error: { code: string } }).error.code,
      ),
    ).toEqual(["ENVPACK_USAGE_BAD_ARGUMENT", "ENVPACK_USAGE_BAD_ARGUMENT"]);
  });
});
