// Python includes: `[tool.envpack] include` in pyproject.toml and the include option ship
// distributions and project files no analysis sees; an include that names nothing is an error.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { isEnvpackError } from "../../src/core/index.js";
import { scan } from "../../src/scan/index.js";
import { tempDir } from "../helpers/temp-dir.js";

function prefix(): string {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda.prefix;
}

async function project(include: string[]): Promise<string> {
  const dir = join(await tempDir("envpack-pyinclude-"), "app");
  await mkdir(join(dir, "src", "plugins"), { recursive: true });
  await mkdir(join(dir, "templates"), { recursive: true });
  await writeFile(join(dir, "src", "main.py"), "print('hi')\n");
  await writeFile(join(dir, "src", "plugins", "loud.py"), "import six\n");
  await writeFile(join(dir, "templates", "mail.txt"), "hello\n");
  await writeFile(join(dir, "templates", "notes.md"), "notes\n");
  await writeFile(
    join(dir, "pyproject.toml"),
    `[project]\nname = "app"\nversion = "0"\n\n[tool.envpack]\ninclude = ${JSON.stringify(include)}\n`,
  );
  return dir;
}

describe("python includes", () => {
  it("pyproject [tool.envpack] include and the option add distributions and project files (reason included; .py scanned)", async () => {
    const dir = await project(["JSONPointer", "templates/*.txt"]);
    const manifest = await scan({
      entries: ["src/main.py"],
      cwd: dir,
      env: prefix(),
      generatorVersion: "test",
      include: ["src/plugins/**"],
    });
    const reasons = Object.fromEntries(
      manifest.packages.map((p) => [p.id, p.reason]),
    );
    expect(reasons).toEqual({
      "conda:python": "interpreter",
      "pip:jsonpointer": "included",
      "conda:six": "import",
    });
    expect(
      manifest.files
        .filter((f) => f.reason === "included")
        .map((f) => `${f.path} ${f.role}`),
    ).toEqual(["src/plugins/loud.py module", "templates/mail.txt asset"]);
  });

  it("an include that names nothing is ENVPACK_INPUT_INCLUDE_MISSING naming it", async () => {
    const dir = await project(["views/**"]);
    const error = await scan({
      entries: ["src/main.py"],
      cwd: dir,
      env: prefix(),
      generatorVersion: "test",
    }).catch((e: unknown) => e);
    if (!isEnvpackError(error)) throw error;
    expect(error.code).toBe("ENVPACK_INPUT_INCLUDE_MISSING");
    expect(error.details).toMatchObject({ include: "views/**" });
  });
});
