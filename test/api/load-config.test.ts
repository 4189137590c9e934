// loadRegistryConfig: URL and plain-HTTP switch from flags or the environment,
// credentials from the environment or a real Docker config file.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, loadRegistryConfig } from "../../src/api/index.js";
import { tempDir } from "../helpers/temp-dir.js";

/** A DOCKER_CONFIG directory whose config.json holds `text`. */
async function dockerConfigDir(text: string): Promise<string> {
  const dir = join(await tempDir(), "docker");
  await mkdir(dir);
  await writeFile(join(dir, "config.json"), text);
  return dir;
}

const base = (extra: Record<string, string>) => ({
  HOME: "/nonexistent-home",
  ENVPACK_CACHE_DIR: "/tmp/envpack-cache",
  ...extra,
});

describe("loadRegistryConfig", () => {
  it("has no registry unless a flag or ENVPACK_REGISTRY names one; the flag wins", () => {
    expect(loadRegistryConfig({}, base({}))).toBeUndefined();
    expect(
      loadRegistryConfig({}, base({ ENVPACK_REGISTRY: "/srv/bundles" })),
    ).toEqual({ url: "/srv/bundles", insecure: false, credentials: undefined });
    expect(
      loadRegistryConfig(
        { registry: "oci://127.0.0.1:5000/flag", insecure: true },
        base({ ENVPACK_REGISTRY: "oci://127.0.0.1:5000/env" }),
      ),
    ).toMatchObject({ url: "oci://127.0.0.1:5000/flag", insecure: true });
    expect(
      loadRegistryConfig(
        {},
        base({
          ENVPACK_REGISTRY: "oci://127.0.0.1:5000/env",
          ENVPACK_REGISTRY_INSECURE: "1",
        }),
      )?.insecure,
    ).toBe(true);
  });

  it("takes an oci:// deadline from ENVPACK_REGISTRY_DEADLINE_MS, refusing what is not one", () => {
    const env = (value: string) =>
      base({
        ENVPACK_REGISTRY: "oci://127.0.0.1:5000/env",
        ENVPACK_REGISTRY_DEADLINE_MS: value,
      });
    expect(loadRegistryConfig({}, env("5000"))?.deadlineMs).toBe(5000);
    expect(loadRegistryConfig({}, env(""))?.deadlineMs).toBeUndefined();
    for (const bad of ["soon", "0", "-1", "1.5"])
      expect(() => loadRegistryConfig({}, env(bad))).toThrow(
        expect.objectContaining({
          code: "ENVPACK_USAGE_BAD_CONFIG",
          message: expect.stringContaining("ENVPACK_REGISTRY_DEADLINE_MS"),
        }),
      );
  });

  it("reads the registry host's entry from $DOCKER_CONFIG/config.json", async () => {
    const auth = Buffer.from("alice:pa:ss").toString("base64");
    const dir = await dockerConfigDir(
      JSON.stringify({ auths: { "127.0.0.1:5000": { auth } } }),
    );
    const env = base({
      ENVPACK_REGISTRY: "oci://127.0.0.1:5000/repo",
      DOCKER_CONFIG: dir,
    });
    expect(loadRegistryConfig({}, env)?.credentials).toEqual({
      username: "alice",
      password: "pa:ss",
    });
    expect(
      loadRegistryConfig({ registry: "oci://127.0.0.1:6000/repo" }, env)
        ?.credentials,
    ).toBeUndefined();
  });

  it("prefers ENVPACK_REGISTRY_TOKEN or _USER/_PASSWORD and then does not read the Docker config", async () => {
    const broken = await dockerConfigDir("{ not json");
    const env = base({
      ENVPACK_REGISTRY: "oci://127.0.0.1:5000/repo",
      DOCKER_CONFIG: broken,
    });
    expect(
      loadRegistryConfig({}, { ...env, ENVPACK_REGISTRY_TOKEN: "tkn" })
        ?.credentials,
    ).toEqual({ token: "tkn" });
    expect(
      loadRegistryConfig(
        {},
        {
          ...env,
          ENVPACK_REGISTRY_USER: "ci",
          ENVPACK_REGISTRY_PASSWORD: "pw",
        },
      )?.credentials,
    ).toEqual({ username: "ci", password: "pw" });
    expect(() => loadRegistryConfig({}, env)).toThrow(
      expect.objectContaining({ code: "ENVPACK_USAGE_BAD_CONFIG" }),
    );
  });

  it("gives a directory registry no credentials and reads no Docker config for it", async () => {
    const broken = await dockerConfigDir("{ not json");
    expect(
      loadRegistryConfig(
        { registry: "file:///srv/bundles" },
        base({ DOCKER_CONFIG: broken }),
      ),
    ).toEqual({
      url: "file:///srv/bundles",
      insecure: false,
      credentials: undefined,
    });
  });

  it("is read only by the commands that use a registry: loadConfig ignores it", async () => {
    const broken = await dockerConfigDir("{ not json");
    const config = loadConfig(
      {},
      base({
        ENVPACK_REGISTRY: "oci://127.0.0.1:5000/repo",
        DOCKER_CONFIG: broken,
      }),
    );
    expect(config).toEqual({ env: undefined, cacheDir: "/tmp/envpack-cache" });
  });
});
