// Python declared dependencies: PEP 508 names from pyproject.toml and requirements files ship with
// reason declared unless the scan is asked for the import closure only (the table case
// fixtures/scan/python-declared pins the full result).

import { cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { isEnvpackError } from "../../src/core/index.js";
import { scan } from "../../src/scan/index.js";
import {
  evaluateMarker,
  markerEnvironment,
  poetryPythonMarker,
} from "../../src/scan/python/markers.js";
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
    ["six", "six", undefined],
    ["Six >= 1.16", "Six", undefined],
    ["requests[socks,security] ~= 2.31", "requests", undefined],
    ["zope.interface==6.*", "zope.interface", undefined],
    ["pywin32 ; sys_platform == 'win32'", "pywin32", "sys_platform == 'win32'"],
    [
      "name @ https://example.invalid/x.whl ; python_version>'3'",
      "name",
      "python_version>'3'",
    ],
    ["name @ https://example.invalid/x.whl#sha256=ab;cd", "name", undefined],
    ["numpy(>=1.0)", "numpy", undefined],
    ["x;os_name=='nt'", "x", "os_name=='nt'"],
  ])("%s → %s", (text, name, marker) => {
    expect(parseRequirement(text)).toEqual(
      marker === undefined ? { name } : { name, marker },
    );
  });

  it.each(["", "-e .", "./local", ">=1.0", "na me"])(
    "%j names nothing",
    (text) => {
      expect(parseRequirement(text)).toBeUndefined();
    },
  );
});

describe("PEP 508 markers against the target environment", () => {
  const linux = markerEnvironment("3.11.7", "linux-64");
  it.each([
    ['python_version < "3.8"', false],
    ['python_version >= "3.8"', true],
    ["python_version > '3.9'", true],
    ['python_full_version == "3.11.*"', true],
    ['python_full_version != "3.11.*"', false],
    ['python_version ~= "3.9"', true],
    ['python_version === "3.11"', true],
    ['sys_platform == "win32"', false],
    ['sys_platform != "win32" and os_name == "posix"', true],
    ['platform_system == "Windows" or platform_machine == "x86_64"', true],
    [
      '(sys_platform == "darwin" or sys_platform == "linux") and python_version < "4"',
      true,
    ],
    ["'linux' in sys_platform", true],
    ["'win' not in sys_platform", true],
    ['implementation_name == "cpython"', true],
    ['platform_python_implementation == "PyPy"', false],
    ['extra == "test"', false],
    ["sys.platform == 'linux'", true],
    // The worker's kernel is not known: the answer is "cannot tell", unless the rest decides.
    ['platform_release >= "5.0"', undefined],
    ['platform_release >= "5.0" and sys_platform == "win32"', false],
    ['platform_release >= "5.0" or sys_platform == "linux"', true],
    ['sys_platform < "m"', undefined],
    ["python_version <", undefined],
    ['unknown_variable == "1"', undefined],
    ['(python_version > "3"', undefined],
  ])("%s → %s on Python 3.11.7, linux-64", (marker, expected) => {
    expect(evaluateMarker(marker, linux)).toBe(expected);
  });

  it("takes the platform from the Conda subdir and the version from the interpreter", () => {
    const windows = markerEnvironment("3.7.1", "win-64");
    expect(evaluateMarker('sys_platform == "win32"', windows)).toBe(true);
    expect(evaluateMarker('os_name == "nt"', windows)).toBe(true);
    expect(evaluateMarker('python_version < "3.8"', windows)).toBe(true);
    expect(
      evaluateMarker(
        'platform_machine == "arm64"',
        markerEnvironment("3.12.0", "osx-arm64"),
      ),
    ).toBe(true);
    expect(
      evaluateMarker(
        'sys_platform == "linux"',
        markerEnvironment("3.12.0", "noarch"),
      ),
    ).toBeUndefined();
  });

  it.each([
    ["^3.8", true],
    ["^3.12", false],
    ["~3.11", true],
    ["~3.10", false],
    [">=3.7,<3.11", false],
    [">=3.7 <3.12", true],
    ["3.11.*", true],
    ["<3.8 || >=3.11", true],
    ["*", undefined],
    ["weird", undefined],
  ])("Poetry python = %j → %s on 3.11.7", (constraint, expected) => {
    const marker = poetryPythonMarker(constraint);
    expect(
      marker === undefined
        ? undefined
        : evaluateMarker(marker, markerEnvironment("3.11.7", "linux-64")),
    ).toBe(expected);
  });
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

  it("setup.py is parsed, never run: a computed install_requires is an optional dynamic-expression finding on its line, and a literal one in another call is read", async () => {
    const work = join(await tempDir("envpack-pysetup-"), "app");
    await mkdir(work);
    await writeFile(join(work, "main.py"), "print(1)\n");
    await writeFile(
      join(work, "setup.py"),
      [
        "import setuptools",
        "raise SystemExit('setup.py was run')",
        "setuptools.setup(",
        "    name='x',",
        "    install_requires=open('requirements.in').read().splitlines(),",
        ")",
        "setuptools.setup(name='y', install_requires=('six', f'jsonpointer'))",
        "setuptools.setup(name='z', install_requires=['jsonpointer'])",
        "",
      ].join("\n"),
    );
    const manifest = await scan({
      entries: ["main.py"],
      cwd: work,
      env: prefix(),
      generatorVersion: "test",
    });
    expect(
      manifest.unresolved.map((u) => [u.file, u.line, u.reason, u.optional]),
    ).toEqual([
      ["setup.py", 5, "dynamic-expression", true],
      ["setup.py", 7, "dynamic-expression", true],
    ]);
    expect(manifest.packages.map((p) => `${p.name} ${p.reason}`)).toEqual([
      "python interpreter",
      "jsonpointer declared",
    ]);
  });
});
