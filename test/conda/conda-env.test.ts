// The one Conda prefix model: what it reads from the fixture, and one read shared by scan and packer.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import {
  readCondaEnv,
  sharedCondaEnvReader,
  type CondaEnv,
  type CondaEnvReader,
} from "../../src/conda/index.js";
import { planCondaBundle } from "../../packer/conda/index.js";
import { scan } from "../../src/scan/index.js";
import { tempDir } from "../helpers/temp-dir.js";

function fixture() {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda;
}

describe("the Conda prefix model", () => {
  it("reads records, the interpreter and the pip dist-infos no record manages", async () => {
    const env = await readCondaEnv(fixture().prefix);
    expect(env.python.record.name).toBe("python");
    expect(env.sitePackages).toBe("lib/python3.11/site-packages");
    expect(env.records.map((r) => r.record.name)).toEqual(
      expect.arrayContaining(["python", "six", "fixturepkg"]),
    );
    // six's dist-info is conda's; jsonpointer's is pip's, with its script outside site-packages.
    expect(env.distInfos.map((d) => d.key)).toEqual(["jsonpointer"]);
    const [jsonpointer] = env.distInfos;
    expect(jsonpointer?.modules).toEqual(["jsonpointer"]);
    expect(jsonpointer?.files.has("bin/jsonpointer")).toBe(true);
    expect(jsonpointer?.integrity).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("is read once for a scan and a pack through one reader, and both see the same packages", async () => {
    const shared = sharedCondaEnvReader();
    const seen: CondaEnv[] = [];
    const spy: CondaEnvReader = async (prefix, signal) => {
      const env = await shared(prefix, signal);
      seen.push(env);
      return env;
    };
    const app = await tempDir("envpack-conda-model-");
    await writeFile(
      join(app, "main.py"),
      "import six\nimport jsonpointer\nprint('ok')\n",
    );
    const manifest = await scan({
      entries: ["main.py"],
      cwd: app,
      env: fixture().prefix,
      generatorVersion: "test",
      readCondaEnv: spy,
    });
    const plan = await planCondaBundle({
      prefix: fixture().prefix,
      readEnv: spy,
    });
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBe(seen[0]);
    // The pip package the scan names is the dist-info whose files the bundle holds.
    const pip = manifest.packages.filter((p) => p.manager === "pip");
    expect(pip.map((p) => p.path)).toEqual(
      seen[0]!.distInfos.map((d) => d.path),
    );
    // Each file, or (a directory such as licenses/) the files under it.
    const paths = plan.entries.map((e) => e.path);
    const missing = [...seen[0]!.distInfos[0]!.files].filter(
      (f) => !paths.some((p) => p === f || p.startsWith(`${f}/`)),
    );
    expect(missing).toEqual([]);
  });

  it("does not keep a failed read: a prefix made afterwards is read", async () => {
    const read = sharedCondaEnvReader();
    const prefix = join(await tempDir("envpack-conda-late-"), "env");
    await expect(read(prefix)).rejects.toMatchObject({
      code: "ENVPACK_INPUT_ENV_NOT_FOUND",
    });
    await mkdir(join(prefix, "conda-meta"), { recursive: true });
    await writeFile(
      join(prefix, "conda-meta", "python-3.11.7-h_0.json"),
      JSON.stringify({ name: "python", version: "3.11.7", files: [] }),
    );
    const env = await read(prefix);
    expect(env.pythonMajorMinor).toBe("3.11");
    expect(await read(prefix)).toBe(env);
  });
});
