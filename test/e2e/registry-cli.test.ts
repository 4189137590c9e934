// `envpack build --registry`, `push` and `pull` through the built CLI against a real
// docker-registry on 127.0.0.1 and a directory registry.

import { randomBytes } from "node:crypto";
import {
  mkdir,
  readFile,
  readdir,
  stat,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { openRegistry } from "../../src/registry/index.js";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { startProxy } from "../helpers/http-proxy.js";
import { tempDir } from "../helpers/temp-dir.js";

interface BuildJson {
  ok: boolean;
  digest: string;
  inputDigest: `sha256:${string}`;
  key: `sha256:${string}`;
  source: "cache" | "registry" | "built";
  pushed?: boolean;
  pushError?: { code: string; message: string };
}

async function json<T>(
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<T> {
  const run = await envpack(["--json", ...args], { cwd, env });
  expect(run.stderr).not.toMatch(/internal error/);
  expect(run.exitCode, run.stdout).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** Backdates the access time of every file inside the app's packages but package.json. */
async function backdatePackageFiles(app: string): Promise<string[]> {
  const touched: string[] = [];
  for (const entry of await readdir(join(app, "node_modules"), {
    withFileTypes: true,
    recursive: true,
  })) {
    const path = join(entry.parentPath, entry.name);
    if (
      !entry.isFile() ||
      entry.name === "package.json" ||
      entry.name.startsWith(".")
    )
      continue;
    await utimes(path, new Date("2001-01-01"), (await stat(path)).mtime);
    touched.push(path);
  }
  return touched;
}

describe("envpack build --registry, push, pull", () => {
  it.each([
    ["push", "envpack push sha256:"],
    ["pull", "envpack pull --input sha256:"],
    ["build", "envpack build src/main.ts --registry oci://"],
  ])(
    "%s --help names --registry and shows an example",
    async (verb, example) => {
      const help = await envpack([verb, "--help"]);
      expect(help.exitCode).toBe(0);
      expect(help.stdout).toContain("--registry <url>");
      expect(help.stdout).toContain("--insecure");
      expect(help.stdout).toMatch(/^Example:$/m);
      expect(help.stdout).toContain(example);
    },
  );

  it("builds and publishes once; a clean machine pulls it without reading package contents", async () => {
    const url = `oci://${inject("registry").openHost}/t-${randomBytes(6).toString("hex")}`;
    const app = await appCopy("hello");
    const first = await json<BuildJson>(
      ["build", "src/main.ts", "--registry", url, "--insecure"],
      app,
      { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") },
    );
    expect(first).toMatchObject({ ok: true, source: "built", pushed: true });
    const entry = await openRegistry(url, { insecure: true }).lookup(first.key);
    expect(entry?.digest).toBe(first.digest);
    expect(entry?.meta["inputDigest"]).toBe(first.inputDigest);

    const clean = join(await tempDir(), "cache");
    const touched = await backdatePackageFiles(app);
    expect(touched.length).toBeGreaterThan(0);
    const plain = await envpack(["--json", "build", "src/main.ts"], {
      cwd: app,
      env: { ENVPACK_CACHE_DIR: clean, ENVPACK_REGISTRY: url },
    });
    expect(plain.exitCode).toBe(1);
    expect(JSON.parse(plain.stdout).error.hint).toContain("--insecure");
    const env = {
      ENVPACK_CACHE_DIR: clean,
      ENVPACK_REGISTRY: url,
      ENVPACK_REGISTRY_INSECURE: "1",
    };
    const second = await json<BuildJson>(["build", "src/main.ts"], app, env);
    expect(second).toMatchObject({
      source: "registry",
      digest: first.digest,
      inputDigest: first.inputDigest,
    });
    const read: string[] = [];
    for (const path of touched)
      if ((await stat(path)).atime.getUTCFullYear() !== 2001) read.push(path);
    expect(read).toEqual([]);

    const third = await json<BuildJson>(["build", "src/main.ts"], app, env);
    expect(third).toMatchObject({ source: "cache", digest: first.digest });
    const ran = await envpack(["run", first.digest], {
      cwd: app,
      env: { ENVPACK_CACHE_DIR: clean },
    });
    expect(ran.exitCode).toBe(0);
    expect(ran.stdout).toContain("hello, world");
  });

  it("pushes a cached bundle and pulls it by input digest or by digest", async () => {
    const url = `oci://${inject("registry").openHost}/t-${randomBytes(6).toString("hex")}`;
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const built = await json<BuildJson>(["build", "src/main.ts"], app, {
      ENVPACK_CACHE_DIR: cache,
    });
    expect(built.source).toBe("built");
    const pushed = await json<{ inputDigests: string[] }>(
      ["push", built.digest, "--registry", url, "--insecure"],
      app,
      { ENVPACK_CACHE_DIR: cache },
    );
    expect(pushed.inputDigests).toEqual([built.inputDigest]);

    const other = join(await tempDir(), "cache");
    const byInput = await json<{ digest: string; path: string }>(
      ["pull", "--input", built.inputDigest, "--registry", url, "--insecure"],
      app,
      { ENVPACK_CACHE_DIR: other },
    );
    expect(byInput.digest).toBe(built.digest);
    const listed = await json<{
      bundles: { digest: string; inputs: string[] }[];
    }>(["cache", "ls"], app, { ENVPACK_CACHE_DIR: other });
    expect(listed.bundles).toEqual([
      expect.objectContaining({
        digest: built.digest,
        inputs: [built.inputDigest],
      }),
    ]);
    const byDigest = await json<{ digest: string }>(
      ["pull", built.digest, "--registry", url, "--insecure"],
      app,
      { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") },
    );
    expect(byDigest.digest).toBe(built.digest);

    const unknown = await envpack(
      [
        "--json",
        "pull",
        "--input",
        `sha256:${"0".repeat(64)}`,
        "--registry",
        url,
        "--insecure",
      ],
      { cwd: app, env: { ENVPACK_CACHE_DIR: other } },
    );
    expect(unknown.exitCode).toBe(2);
    expect(JSON.parse(unknown.stdout).error.code).toBe(
      "ENVPACK_INPUT_ENTRY_NOT_FOUND",
    );
  });

  it("shows one progress line per transfer on stderr, none with --quiet", async () => {
    const url = `oci://${inject("registry").openHost}/t-${randomBytes(6).toString("hex")}`;
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const built = await json<BuildJson>(["build", "src/main.ts"], app, {
      ENVPACK_CACHE_DIR: cache,
    });
    const pushed = await envpack(
      ["push", built.digest, "--registry", url, "--insecure"],
      { cwd: app, env: { ENVPACK_CACHE_DIR: cache } },
    );
    expect(pushed.exitCode).toBe(0);
    expect(pushed.stdout).toContain(`pushed ${built.digest}`);
    expect(pushed.stderr).toMatch(
      /^push: sha256:[0-9a-f]{12}…, [\d.]+ MB( \([\d.]+ s\))?$/m,
    );
    expect(pushed.stderr).not.toContain("\x1b[");
    const quiet = await envpack(
      ["-q", "pull", "--input", built.inputDigest, "--registry", url],
      {
        cwd: app,
        env: {
          ENVPACK_CACHE_DIR: join(await tempDir(), "cache"),
          ENVPACK_REGISTRY_INSECURE: "1",
        },
      },
    );
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout).toContain(`pulled ${built.digest}`);
    expect(quiet.stderr).toBe("");
  });

  it("keys the example workflow's caches right: scan --json gives the build's input digest", async () => {
    const app = await appCopy("hello");
    const env = { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") };
    const scanned = await envpack(
      ["scan", "src/main.ts", "--json", "--quiet"],
      {
        cwd: app,
        env,
      },
    );
    expect(scanned.exitCode).toBe(0);
    expect(scanned.stderr).toBe("");
    const { inputDigest } = JSON.parse(scanned.stdout) as {
      inputDigest: string;
    };
    expect(inputDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const built = await json<BuildJson>(["build", "src/main.ts"], app, env);
    expect(built.inputDigest).toBe(inputDigest);
    const workflow = await readFile(
      join(import.meta.dirname, "..", "..", "examples", "github-actions.yml"),
      "utf8",
    );
    expect(workflow).toContain(
      "npx envpack scan src/main.ts --json --quiet | jq -r .inputDigest",
    );
    expect(workflow).toContain("npx envpack build src/main.ts --json");
  });

  it("uses a directory as the registry", async () => {
    const dir = await tempDir();
    const app = await appCopy("hello");
    const first = await json<BuildJson>(
      ["build", "src/main.ts", "--registry", dir],
      app,
      { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") },
    );
    expect(first.source).toBe("built");
    const second = await json<BuildJson>(
      ["build", "src/main.ts", "--registry", `file://${dir}`],
      app,
      { ENVPACK_CACHE_DIR: join(await tempDir(), "cache") },
    );
    expect(second).toMatchObject({ source: "registry", digest: first.digest });
  });

  it("still succeeds when the registry refuses the push, with a coded warning and pushed: false", async () => {
    const name = `t-${randomBytes(6).toString("hex")}`;
    // Reads pass, uploads are refused: a token that may pull but not push (a fork's CI job).
    const readOnly = await startProxy({
      target: inject("registry").openHost,
      decide: (req) =>
        req.method === "GET" || req.method === "HEAD"
          ? { forward: true }
          : { status: 403, body: "denied" },
    });
    try {
      const app = await appCopy("hello");
      const cache = join(await tempDir(), "cache");
      const run = await envpack(
        [
          "--json",
          "build",
          "src/main.ts",
          "--registry",
          `oci://${readOnly.host}/${name}`,
          "--insecure",
        ],
        { cwd: app, env: { ENVPACK_CACHE_DIR: cache } },
      );
      expect(run.exitCode, run.stdout).toBe(0);
      const built = JSON.parse(run.stdout) as BuildJson;
      expect(built).toMatchObject({ ok: true, source: "built", pushed: false });
      expect(built.pushError?.code).toBe("ENVPACK_REMOTE_AUTH");
      expect(run.stderr).toContain("ENVPACK_WARN_REGISTRY_PUSH");
      expect(readOnly.requests).toContainEqual(
        expect.stringMatching(/^POST \/v2\/.*\/blobs\/uploads\/$/),
      );
      expect(
        await openRegistry(`oci://${inject("registry").openHost}/${name}`, {
          insecure: true,
        }).lookup(built.key),
      ).toBeNull();
      const again = await json<BuildJson>(["build", "src/main.ts"], app, {
        ENVPACK_CACHE_DIR: cache,
      });
      expect(again).toMatchObject({ source: "cache", digest: built.digest });
    } finally {
      await readOnly.close();
    }
  });

  it("pushes to and pulls from a directory registry", async () => {
    const dir = join(await tempDir(), "registry");
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const built = await json<BuildJson>(["build", "src/main.ts"], app, {
      ENVPACK_CACHE_DIR: cache,
    });
    const pushed = await json<{ inputDigests: string[] }>(
      ["push", built.digest, "--registry", `file://${dir}`],
      app,
      { ENVPACK_CACHE_DIR: cache },
    );
    expect(pushed.inputDigests).toEqual([built.inputDigest]);
    const other = join(await tempDir(), "cache");
    const pulled = await json<{
      digest: string;
      inputDigest: string;
      path: string;
      size: number;
    }>(["pull", "--input", built.inputDigest], app, {
      ENVPACK_CACHE_DIR: other,
      ENVPACK_REGISTRY: dir,
    });
    expect(pulled).toMatchObject({
      digest: built.digest,
      inputDigest: built.inputDigest,
      path: join(other, "blobs", "sha256", built.digest.slice(7)),
    });
    expect((await stat(pulled.path)).size).toBe(pulled.size);
    const hit = await json<BuildJson>(["build", "src/main.ts"], app, {
      ENVPACK_CACHE_DIR: other,
    });
    expect(hit).toMatchObject({ source: "cache", digest: built.digest });
  });

  it("fails with the registry named and the password hidden when credentials are wrong", async () => {
    const { authHost, username, password } = inject("registry");
    const wrong = `${password}-nope`;
    const app = await appCopy("hello");
    const run = await envpack(
      [
        "--json",
        "pull",
        "--input",
        `sha256:${"1".repeat(64)}`,
        "--registry",
        `oci://${authHost}/envpack`,
        "--insecure",
      ],
      {
        cwd: app,
        env: {
          ENVPACK_CACHE_DIR: join(await tempDir(), "cache"),
          ENVPACK_REGISTRY_USER: username,
          ENVPACK_REGISTRY_PASSWORD: wrong,
        },
      },
    );
    expect(run.exitCode).toBe(1);
    const error = JSON.parse(run.stdout).error;
    expect(error.code).toBe("ENVPACK_REMOTE_AUTH");
    expect(error.details.url).toContain(authHost);
    expect(run.stdout + run.stderr).not.toContain(wrong);

    const human = await envpack(
      ["build", "src/main.ts", "--registry", `oci://${authHost}/envpack`],
      {
        cwd: app,
        env: {
          ENVPACK_CACHE_DIR: join(await tempDir(), "cache"),
          ENVPACK_REGISTRY_INSECURE: "1",
          ENVPACK_REGISTRY_USER: username,
          ENVPACK_REGISTRY_PASSWORD: wrong,
        },
      },
    );
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toBe("");
    expect(human.stderr).toMatch(
      new RegExp(
        `^envpack: the registry oci://${authHost}/envpack refused the credentials \\(401\\)\nhint: .+\ncode: ENVPACK_REMOTE_AUTH$`,
        "m",
      ),
    );
    expect(human.stderr).not.toContain(wrong);
    expect(human.stderr).not.toMatch(/^\s+at /m);
  });

  it("signs in with the Docker config's entry for the registry host", async () => {
    const { authHost, username, password } = inject("registry");
    const docker = join(await tempDir(), "docker");
    await mkdir(docker);
    await writeFile(
      join(docker, "config.json"),
      JSON.stringify({
        auths: {
          [authHost]: {
            auth: Buffer.from(`${username}:${password}`).toString("base64"),
          },
        },
      }),
    );
    const url = `oci://${authHost}/t-${randomBytes(6).toString("hex")}`;
    const app = await appCopy("hello");
    const env = {
      ENVPACK_CACHE_DIR: join(await tempDir(), "cache"),
      ENVPACK_REGISTRY: url,
      ENVPACK_REGISTRY_INSECURE: "1",
      DOCKER_CONFIG: docker,
    };
    const built = await json<BuildJson>(["build", "src/main.ts"], app, env);
    expect(built).toMatchObject({ source: "built", pushed: true });
    const anonymous = await envpack(
      ["--json", "pull", "--input", built.inputDigest],
      {
        cwd: app,
        env: { ...env, DOCKER_CONFIG: join(docker, "absent") },
      },
    );
    expect(anonymous.exitCode).toBe(1);
    expect(JSON.parse(anonymous.stdout).error.code).toBe("ENVPACK_REMOTE_AUTH");
    const pulled = await json<{ digest: string }>(
      ["pull", "--input", built.inputDigest],
      app,
      { ...env, ENVPACK_CACHE_DIR: join(await tempDir(), "cache") },
    );
    expect(pulled.digest).toBe(built.digest);
  });
});
