// Python declared dependencies: PEP 508 names from pyproject.toml and requirements files ship with
// reason declared unless the scan is asked for the import closure only (the table case
// fixtures/scan/python-declared pins the full result).

import { cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { isEnvpackError } from "../../src/core/index.js";
import { scan } from "../../src/scan/index.js";
import { parseRequirement } from "../../src/scan/python/requirements.js";
import { tempDir } from "../helpers/temp-dir.js";

const caseDir = join(
  import.meta.dirname,
  "..",
  "..",
  "fixtures",
  "scan",
  "python-declared",
);

function prefix(): string {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda.prefix;
}

async function copyCase(): Promise<string> {
  const work = join(await tempDir("envpack-pydeclared-"), "app");
  await cp(caseDir, work, {
    recursive: true,
    filter: (src) => !/[/\\](case|expected)\.json$/.test(src),
  });
  return work;
}

describe("PEP 508 requirements", () => {
  it.each([
    ["six", "six", false],
    ["Six >= 1.16", "Six", false],
    ["requests[socks,security] ~= 2.31", "requests", false],
    ["zope.interface==6.*", "zope.interface", false],
    ["pywin32 ; sys_platform == 'win32'", "pywin32", true],
    ["name @ https://example.invalid/x.whl ; python_version>'3'", "name", true],
    ["name @ https://example.invalid/x.whl#sha256=ab;cd", "name", false],
    ["numpy(>=1.0)", "numpy", false],
  ])("%s → %s", (text, name, marker) => {
    expect(parseRequirement(text)).toEqual({ name, marker });
  });

  it.each(["", "-e .", "./local", ">=1.0", "na me"])(
    "%j names nothing",
    (text) => {
      expect(parseRequirement(text)).toBeUndefined();
    },
  );
});

describe("python declared dependencies", () => {
  it("declared: false (--only-imported) reads no declarations: only the import closure, a different digest", async () => {
    const work = await copyCase();
    const options = {
      entries: ["app/main.py"],
      cwd: work,
      env: prefix(),
      generatorVersion: "test",
    };
    const full = await scan(options);
    const strict = await scan({ ...options, declared: false });
    expect(strict.packages.map((p) => `${p.id} ${p.reason}`)).toEqual([
      "conda:python interpreter",
      "conda:six import",
    ]);
    expect(strict.files.map((f) => f.path)).toEqual(["main.py"]);
    expect(strict.unresolved).toEqual([]);
    expect(strict.inputDigest).not.toBe(full.inputDigest);
  });

  it("a pyproject.toml that is not TOML is ENVPACK_INPUT_SYNTAX_ERROR naming its line", async () => {
    const work = join(await tempDir("envpack-pytoml-"), "app");
    await mkdir(work);
    await writeFile(join(work, "main.py"), "import six\n");
    await writeFile(
      join(work, "pyproject.toml"),
      '[project]\nname = "x"\ndependencies = ["six"\n',
    );
    const error = await scan({
      entries: ["main.py"],
      cwd: work,
      env: prefix(),
      generatorVersion: "test",
    }).catch((e: unknown) => e);
    if (!isEnvpackError(error)) throw error;
    expect(error.code).toBe("ENVPACK_INPUT_SYNTAX_ERROR");
    expect(error.details).toMatchObject({
      file: join(work, "pyproject.toml"),
    });
    expect(error.message).toMatch(/pyproject\.toml:\d+:\d+: not valid TOML/);
  });
});
