// Explicit includes: `envpack.include` in the app's package.json and the `include` option ship
// packages and app files no analysis sees; an include that matches nothing is a coded error.

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EnvpackError } from "../../src/core/index.js";
import { scan } from "../../src/scan/index.js";
import { materialiseCase, readCase } from "../helpers/scan-case.js";
import { tempDir } from "../helpers/temp-dir.js";

const caseDir = join(
  import.meta.dirname,
  "..",
  "..",
  "fixtures",
  "scan",
  "js-declared",
);

async function app(include: string[]): Promise<string> {
  const work = await tempDir("envpack-include-");
  await materialiseCase(caseDir, work, await readCase(caseDir));
  const path = join(work, "package.json");
  const json = JSON.parse(await readFile(path, "utf8")) as Record<
    string,
    unknown
  >;
  await writeFile(path, JSON.stringify({ ...json, envpack: { include } }));
  await mkdir(join(work, "templates", "mail"), { recursive: true });
  await writeFile(join(work, "templates", "mail", "welcome.txt"), "hi\n");
  await writeFile(join(work, "templates", "notes.md"), "notes\n");
  return work;
}

describe("includes", () => {
  it("package.json envpack.include and the option add packages and globbed app files, reason included", async () => {
    const work = await app(["templates/**/*.txt"]);
    const manifest = await scan({
      entries: ["src/main.js"],
      cwd: work,
      generatorVersion: "test",
      include: ["dev-only"],
    });
    expect(manifest.packages.find((p) => p.name === "dev-only")?.reason).toBe(
      "included",
    );
    expect(
      manifest.files.filter((f) => f.reason === "included").map((f) => f.path),
    ).toEqual(["templates/mail/welcome.txt"]);
  });

  it("an include that names nothing is ENVPACK_INPUT_INCLUDE_MISSING naming it", async () => {
    const work = await app(["views/**"]);
    const error = await scan({
      entries: ["src/main.js"],
      cwd: work,
      generatorVersion: "test",
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvpackError);
    expect(error).toMatchObject({
      code: "ENVPACK_INPUT_INCLUDE_MISSING",
      details: { include: "views/**" },
    });
  });
});
