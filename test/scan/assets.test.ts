// Asset directories and files the app names from its own location: hashed into the manifest
// (an edit changes the input digest), and a directory over the budget is left out with a warning.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { EnvpackEvent } from "../../src/core/index.js";
import { scan } from "../../src/scan/index.js";
import { tempDir } from "../helpers/temp-dir.js";

async function app(files: number): Promise<string> {
  const dir = await tempDir("envpack-assets-");
  await mkdir(join(dir, "templates"));
  for (let i = 0; i < files; i++)
    await writeFile(join(dir, "templates", `t${i}.txt`), `template ${i}\n`);
  await writeFile(
    join(dir, "main.cjs"),
    'const path = require("node:path");\nmodule.exports = path.join(__dirname, "templates");\n',
  );
  return dir;
}

describe("asset directories", () => {
  it("hash every file into the input digest", async () => {
    const dir = await app(3);
    const first = await scan({
      entries: ["main.cjs"],
      cwd: dir,
      generatorVersion: "test",
    });
    expect(
      first.files.filter((f) => f.reason === "asset").map((f) => f.path),
    ).toEqual(["templates/t0.txt", "templates/t1.txt", "templates/t2.txt"]);
    await writeFile(join(dir, "templates", "t1.txt"), "edited\n");
    const second = await scan({
      entries: ["main.cjs"],
      cwd: dir,
      generatorVersion: "test",
    });
    expect(second.inputDigest).not.toBe(first.inputDigest);
  });

  it("over the file budget: left out, with ENVPACK_WARN_ASSET_BUDGET naming the directory and the line", async () => {
    const dir = await app(1001);
    const events: EnvpackEvent[] = [];
    const manifest = await scan({
      entries: ["main.cjs"],
      cwd: dir,
      generatorVersion: "test",
      onEvent: (e) => events.push(e),
    });
    expect(manifest.files.map((f) => f.path)).toEqual(["main.cjs"]);
    const warning = events.find((e) => e.type === "warn");
    expect(warning).toMatchObject({
      code: "ENVPACK_WARN_ASSET_BUDGET",
      data: { line: 2, files: 1001 },
    });
  });
});
