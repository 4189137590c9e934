// A manifest edited to read packages from elsewhere is refused before anything is read or cached.

import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { appCopy } from "../helpers/app-copy.js";
import { envpack } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp-dir.js";

interface ManifestJson {
  packages: Array<{ name: string; path: string; links?: string[] }>;
}

async function forged(
  app: string,
  edit: (m: ManifestJson) => void,
): Promise<string> {
  const manifest = JSON.parse(
    await readFile(join(app, "manifest.json"), "utf8"),
  ) as ManifestJson;
  edit(manifest);
  const file = join(app, `forged-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(manifest));
  return file;
}

describe("build --manifest with forged package paths", () => {
  it("a package path pointing at a look-alike, /etc or ../../.. is ENVPACK_INPUT_MANIFEST_INVALID (exit 2) and caches nothing", async () => {
    const app = await appCopy("hello");
    const cache = join(await tempDir(), "cache");
    const env = { ENVPACK_CACHE_DIR: cache };
    const scanned = await envpack(
      ["scan", "src/main.ts", "-o", "manifest.json"],
      {
        cwd: app,
        env,
      },
    );
    expect(scanned.exitCode).toBe(0);
    // Same name and version as the real package, different code.
    await mkdir(join(app, "lookalike", "ms"), { recursive: true });
    await writeFile(
      join(app, "lookalike", "ms", "package.json"),
      JSON.stringify({ name: "ms", version: "2.1.3", main: "index.js" }),
    );
    await writeFile(
      join(app, "lookalike", "ms", "index.js"),
      "module.exports = () => 'forged';\n",
    );
    const setPath = (path: string) => (m: ManifestJson) => {
      const ms = m.packages.find((p) => p.name === "ms");
      if (ms === undefined) throw new Error("the hello app lost ms");
      ms.path = path;
    };
    const files = [
      await forged(app, setPath("lookalike/ms")),
      await forged(app, setPath("/etc")),
      await forged(app, setPath("../../..")),
      await forged(app, (m) => {
        m.packages[0]!.links = ["../outside"];
      }),
    ];
    const runs = await Promise.all(
      files.map((file) =>
        envpack(["build", "--json", "--manifest", file], { cwd: app, env }),
      ),
    );
    expect(runs.map((r) => r.exitCode)).toEqual([2, 2, 2, 2]);
    expect(
      runs.map(
        (r) => (JSON.parse(r.stdout) as { error: { code: string } }).error.code,
      ),
    ).toEqual(Array(4).fill("ENVPACK_INPUT_MANIFEST_INVALID"));
    const indexed = await readdir(join(cache, "index", "sha256")).catch(
      () => [],
    );
    expect(indexed).toEqual([]);
  });
});
