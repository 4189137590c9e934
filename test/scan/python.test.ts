// Python import scanning against the Conda fixture prefix (and tiny hand-made prefixes for name mapping and bad input).

import { createHash } from "node:crypto";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { makeCondaVariant } from "../../scripts/fixtures/conda.mjs";
import {
  isEnvpackError,
  manifestSchema,
  type EnvpackEvent,
  type Manifest,
} from "../../src/core/index.js";
import { scan } from "../../src/scan/index.js";
import { tempDir } from "../helpers/temp-dir.js";

function fixture() {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda;
}

async function writeApp(
  dir: string,
  files: Record<string, string>,
): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

async function scanApp(
  files: Record<string, string>,
  options: { entries?: string[]; env?: string } = {},
) {
  const dir = await tempDir("envpack-py-");
  await writeApp(dir, files);
  const manifest = await scan({
    entries: options.entries ?? ["main.py"],
    cwd: dir,
    env: options.env ?? fixture().prefix,
    generatorVersion: "test",
  });
  manifestSchema.parse(manifest);
  return { dir, manifest };
}

const resolvedOf = (m: Manifest, specifier: string) =>
  m.imports.find((i) => i.specifier === specifier)?.resolved;
const pkg = (m: Manifest, id: string) => m.packages.find((p) => p.id === id);
const sha256 = (data: string | Buffer) =>
  createHash("sha256").update(data).digest("hex");

async function scanError(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    if (isEnvpackError(error)) return error;
    throw error;
  }
  throw new Error("expected the scan to fail");
}

describe("python scan: standard library", () => {
  it("owns stdlib, lib-dynload and compiled-in modules by the interpreter", async () => {
    const { manifest } = await scanApp({
      "main.py":
        "import os, sys\nimport os.path\nimport json\nimport _decimal\nimport builtins, marshal, posix, _io, time\nfrom collections import OrderedDict\n",
    });
    for (const name of [
      "os",
      "sys",
      "os.path",
      "json",
      "_decimal",
      "builtins",
      "marshal",
      "posix",
      "_io",
      "time",
      "collections",
    ]) {
      expect(resolvedOf(manifest, name), name).toBe("builtin");
    }
    expect(
      manifest.imports.find((i) => i.specifier === "_decimal"),
    ).toMatchObject({ file: "main.py", line: 4, kind: "python-import" });
    expect(manifest.unresolved).toEqual([]);
    expect(manifest.kind).toBe("conda");
    expect(manifest.runtime).toEqual({
      name: "python",
      version: "3.11.7",
      implementation: "cpython",
      platform: "linux-64",
    });
    expect(manifest.env).toEqual({
      prefix: fixture().prefix,
      sitePackages: "lib/python3.11/site-packages",
    });
    expect(manifest.packages.map((p) => [p.id, p.reason])).toEqual([
      ["conda:python", "interpreter"],
    ]);
    expect(manifest.entries).toEqual(["main.py"]);
    expect(manifest.files).toMatchObject([{ path: "main.py", role: "entry" }]);
  });

  it("does not treat stdlib modules the small profile dropped as installed", async () => {
    const { manifest } = await scanApp({ "main.py": "import tkinter\n" });
    expect(manifest.unresolved).toMatchObject([
      { specifier: "tkinter", reason: "not-installed", line: 1, column: 8 },
    ]);
  });
});

describe("python scan: packages", () => {
  it("maps six (noarch conda), fixturepkg (conda) and jsonpointer (pip) from the prefix's metadata", async () => {
    const { manifest } = await scanApp({
      "main.py":
        "import six\nfrom six.moves import range\nimport fixturepkg\nimport jsonpointer\n",
    });
    expect(resolvedOf(manifest, "six")).toBe("package:conda:six");
    expect(resolvedOf(manifest, "six.moves")).toBe("package:conda:six");
    expect(resolvedOf(manifest, "fixturepkg")).toBe("package:conda:fixturepkg");
    expect(resolvedOf(manifest, "jsonpointer")).toBe("package:pip:jsonpointer");
    expect(manifest.packages.map((p) => p.id)).toEqual([
      "conda:fixturepkg",
      "conda:python",
      "conda:six",
      "pip:jsonpointer",
    ]);

    const metaDir = join(fixture().prefix, "conda-meta");
    const sixRecord = JSON.parse(
      await readFile(join(metaDir, "six-1.17.0-pyhd8ed1ab_0.json"), "utf8"),
    ) as { sha256: string; channel: string };
    expect(pkg(manifest, "conda:six")).toEqual({
      id: "conda:six",
      name: "six",
      version: "1.17.0",
      manager: "conda",
      build: "pyhd8ed1ab_0",
      channel: sixRecord.channel,
      path: "conda-meta/six-1.17.0-pyhd8ed1ab_0.json",
      integrity: `sha256:${sixRecord.sha256}`,
      integritySource: "conda-meta",
      dependencies: ["conda:python"],
      reason: "import",
    });
    expect(pkg(manifest, "conda:python")).toMatchObject({
      version: "3.11.7",
      build: "hfx0000_0_cpython",
      reason: "interpreter",
      dependencies: [],
    });
    expect(pkg(manifest, "conda:fixturepkg")).toMatchObject({
      dependencies: ["conda:python", "conda:six"],
      reason: "import",
    });

    const distInfo = "lib/python3.11/site-packages/jsonpointer-3.1.1.dist-info";
    const record = await readFile(join(fixture().prefix, distInfo, "RECORD"));
    expect(pkg(manifest, "pip:jsonpointer")).toEqual({
      id: "pip:jsonpointer",
      name: "jsonpointer",
      version: "3.1.1",
      manager: "pip",
      path: distInfo,
      integrity: `sha256:${sha256(record)}`,
      integritySource: "record",
      dependencies: [],
      reason: "import",
    });
  });

  it("closes over conda depends: fixturepkg brings six as a dependency", async () => {
    const { manifest } = await scanApp({ "main.py": "import fixturepkg\n" });
    expect(manifest.packages.map((p) => [p.id, p.reason])).toEqual([
      ["conda:fixturepkg", "import"],
      ["conda:python", "interpreter"],
      ["conda:six", "dependency"],
    ]);
  });

  it("reports imports nothing installs as not-installed with file, line and column", async () => {
    const { manifest } = await scanApp({
      "main.py":
        "import os\n\ndef load():\n    import yaml\n    from requests.adapters import HTTPAdapter\n",
    });
    expect(manifest.unresolved).toEqual([
      expect.objectContaining({
        specifier: "yaml",
        file: "main.py",
        line: 4,
        column: 12,
        reason: "not-installed",
      }),
      expect.objectContaining({
        specifier: "requests.adapters",
        file: "main.py",
        line: 5,
        column: 5,
        reason: "not-installed",
      }),
    ]);
    expect(manifest.unresolved[0]?.message).toContain("yaml");
    expect(resolvedOf(manifest, "yaml")).toBe("unresolved");
    expect(manifest.packages.map((p) => p.id)).toEqual(["conda:python"]);
  });

  it("reports an editable install as a local project, not a package", async () => {
    const variantDir = join(await tempDir("envpack-editable-"), "root");
    const variant = await makeCondaVariant(fixture(), "editable", variantDir);
    const { manifest } = await scanApp(
      { "main.py": "import fixture_editable\nimport six\n" },
      { env: variant.prefix },
    );
    expect(manifest.unresolved).toEqual([
      expect.objectContaining({
        specifier: "fixture_editable",
        line: 1,
        reason: "local-project",
      }),
    ]);
    expect(manifest.unresolved[0]?.message).toContain(
      join(variantDir, "src", "fixture_editable"),
    );
    expect(manifest.packages.map((p) => p.id)).toEqual([
      "conda:python",
      "conda:six",
    ]);
  });
});

describe("python scan: the app's own modules", () => {
  it("follows absolute, from-package and relative imports, listing every file with its hash", async () => {
    const files = {
      "main.py":
        "import util\nfrom pkg import mod, VALUE\nimport pkg.sub.deep\n",
      "util.py": "X = 1\n",
      "pkg/__init__.py": "VALUE = 2\n",
      "pkg/mod.py":
        "from . import helper\nfrom .helper import thing\nfrom .. import util\nfrom ..util import X\n",
      "pkg/helper.py": "thing = 3\n",
      "pkg/sub/__init__.py": "",
      "pkg/sub/deep.py": "from ..helper import thing\n",
      "pkg/unused.py": "import yaml\n",
    };
    const { manifest } = await scanApp(files);
    expect(manifest.files.map((f) => [f.path, f.role])).toEqual([
      ["main.py", "entry"],
      ["pkg/__init__.py", "module"],
      ["pkg/helper.py", "module"],
      ["pkg/mod.py", "module"],
      ["pkg/sub/__init__.py", "module"],
      ["pkg/sub/deep.py", "module"],
      ["util.py", "module"],
    ]);
    for (const file of manifest.files) {
      const text = files[file.path as keyof typeof files];
      expect(file.sha256).toBe(sha256(text));
      expect(file.size).toBe(Buffer.byteLength(text));
    }
    const simple = manifest.imports.map((i) => [
      i.file,
      i.line,
      i.specifier,
      i.resolved,
    ]);
    expect(simple).toEqual([
      ["main.py", 1, "util", "file:util.py"],
      ["main.py", 2, "pkg", "file:pkg/__init__.py"],
      ["main.py", 2, "pkg.mod", "file:pkg/mod.py"],
      ["main.py", 3, "pkg.sub.deep", "file:pkg/sub/deep.py"],
      ["pkg/mod.py", 1, ".helper", "file:pkg/helper.py"],
      ["pkg/mod.py", 2, ".helper", "file:pkg/helper.py"],
      ["pkg/mod.py", 3, "..util", "file:util.py"],
      ["pkg/mod.py", 4, "..util", "file:util.py"],
      ["pkg/sub/deep.py", 1, "..helper", "file:pkg/helper.py"],
    ]);
    expect(manifest.unresolved).toEqual([]);
  });

  it("prefers an app module over a stdlib one of the same name, as sys.path[0] does", async () => {
    const { manifest } = await scanApp({
      "main.py": "import json\n",
      "json.py": "",
    });
    expect(resolvedOf(manifest, "json")).toBe("file:json.py");
  });

  it("reports a relative import that finds no module", async () => {
    const { manifest } = await scanApp({
      "main.py": "import pkg.a\n",
      "pkg/__init__.py": "",
      "pkg/a.py": "from .missing import x\n",
    });
    expect(manifest.unresolved).toEqual([
      expect.objectContaining({
        specifier: ".missing",
        file: "pkg/a.py",
        line: 1,
        reason: "file-not-found",
      }),
    ]);
  });

  it("terminates on import cycles and lists each file once", async () => {
    const { manifest } = await scanApp({
      "main.py": "import a\n",
      "a.py": "import b\nfrom . import a\n",
      "b.py": "import a\nimport main\n",
    });
    expect(manifest.files.map((f) => f.path)).toEqual([
      "a.py",
      "b.py",
      "main.py",
    ]);
  });

  it("roots the manifest at the common directory of all app files", async () => {
    const { dir, manifest } = await scanApp(
      { "src/app/main.py": "import helper\n", "src/app/helper.py": "" },
      { entries: ["src/app/main.py"] },
    );
    expect(manifest.root).toBe(join(dir, "src", "app"));
    expect(manifest.entries).toEqual(["main.py"]);
  });
});

describe("python scan: statement forms", () => {
  it("ignores `if TYPE_CHECKING:` blocks and `from __future__`, but keeps their else branches", async () => {
    const { manifest } = await scanApp({
      "main.py": [
        "from __future__ import annotations",
        "import typing",
        "from typing import TYPE_CHECKING",
        "if TYPE_CHECKING:",
        "    import yaml",
        "if typing.TYPE_CHECKING:",
        "    from requests import Session",
        "else:",
        "    import six",
        "",
      ].join("\n"),
    });
    expect(manifest.imports.map((i) => i.specifier)).toEqual([
      "typing",
      "typing",
      "six",
    ]);
    expect(manifest.unresolved).toEqual([]);
  });

  it("marks imports guarded by ImportError / ModuleNotFoundError as optional", async () => {
    const { manifest } = await scanApp({
      "main.py": [
        "try:",
        "    import yaml",
        "except ImportError:",
        "    yaml = None",
        "try:",
        "    import six",
        "except (ValueError, ModuleNotFoundError) as error:",
        "    import json",
        "try:",
        "    import requests",
        "except ValueError:",
        "    pass",
        "",
      ].join("\n"),
    });
    expect(manifest.unresolved).toEqual([
      expect.objectContaining({
        specifier: "yaml",
        line: 2,
        reason: "not-installed",
        optional: true,
      }),
      expect.objectContaining({
        specifier: "requests",
        line: 10,
        reason: "not-installed",
      }),
    ]);
    expect(manifest.unresolved[1]?.optional).toBeUndefined();
    expect(manifest.imports.find((i) => i.specifier === "six")).toMatchObject({
      optional: true,
      resolved: "package:conda:six",
    });
    expect(
      manifest.imports.find((i) => i.specifier === "json")?.optional,
    ).toBeUndefined();
    expect(pkg(manifest, "conda:six")).toMatchObject({
      reason: "import",
      optional: true,
    });
  });

  it("resolves literal __import__ and importlib.import_module, and reports computed names", async () => {
    const { manifest } = await scanApp({
      "main.py": [
        "import importlib",
        "from importlib import import_module",
        '__import__("json")',
        'six = importlib.import_module("six")',
        'helper = importlib.import_module(".helper", "pkg")',
        'other = import_module("fixturepkg")',
        "name = 'x'",
        "mod = importlib.import_module(name)",
        'dyn = __import__(f"plugins.{name}")',
        "",
      ].join("\n"),
      "pkg/__init__.py": "",
      "pkg/helper.py": "",
    });
    const dynamic = manifest.imports
      .filter((i) => i.kind === "python-dynamic")
      .map((i) => [i.line, i.specifier, i.resolved]);
    expect(dynamic).toEqual([
      [3, "json", "builtin"],
      [4, "six", "package:conda:six"],
      [5, "pkg.helper", "file:pkg/helper.py"],
      [6, "fixturepkg", "package:conda:fixturepkg"],
      [8, "name", "unresolved"],
      [9, 'f"plugins.{name}"', "unresolved"],
    ]);
    expect(manifest.unresolved.map((u) => [u.line, u.reason])).toEqual([
      [8, "dynamic-expression"],
      [9, "dynamic-expression"],
    ]);
    expect(manifest.files.map((f) => f.path)).toContain("pkg/helper.py");
  });

  it("lists a file with a syntax error, keeps its clean imports and goes on with the other files", async () => {
    const { manifest } = await scanApp({
      "main.py": "import broken\nimport good\n",
      "broken.py": "import six\n\ndef f(:\n    pass\n\nimport fixturepkg\n",
      "good.py": "import jsonpointer\n",
    });
    const broken = manifest.files.find((f) => f.path === "broken.py");
    expect(broken?.problem).toMatchObject({ reason: "syntax-error", line: 3 });
    expect(broken?.problem?.column).toBeGreaterThan(0);
    expect(
      manifest.files.find((f) => f.path === "good.py")?.problem,
    ).toBeUndefined();
    expect(resolvedOf(manifest, "six")).toBe("package:conda:six");
    expect(resolvedOf(manifest, "jsonpointer")).toBe("package:pip:jsonpointer");
  });

  it("lists a binary file without parsing it", async () => {
    const dir = await tempDir("envpack-py-bin-");
    await writeApp(dir, { "main.py": "import blob\n" });
    await writeFile(
      join(dir, "blob.py"),
      Buffer.from([0x69, 0x6d, 0x00, 0x01]),
    );
    const manifest = await scan({
      entries: ["main.py"],
      cwd: dir,
      env: fixture().prefix,
      generatorVersion: "test",
    });
    expect(
      manifest.files.find((f) => f.path === "blob.py")?.problem?.reason,
    ).toBe("binary");
  });
});

describe("python scan: events", () => {
  it("emits scan:file per app file and one scan:done with the totals", async () => {
    const dir = await tempDir("envpack-py-events-");
    await writeApp(dir, {
      "main.py": "import helper\nimport yaml\n",
      "helper.py": "import six\n",
    });
    const events: EnvpackEvent[] = [];
    await scan({
      entries: ["main.py"],
      cwd: dir,
      env: fixture().prefix,
      generatorVersion: "test",
      onEvent: (e) => events.push(e),
    });
    expect(
      events
        .filter((e) => e.type === "scan:file")
        .map((e) => e.type === "scan:file" && e.count),
    ).toEqual([1, 2]);
    expect(events.at(-1)).toMatchObject({
      type: "scan:done",
      files: 2,
      packages: 2,
      unresolved: 1,
    });
  });
});

describe("python scan: input digest", () => {
  it("is unchanged when the app moves and changes when an app file changes", async () => {
    const files = {
      "main.py": "import six\nimport helper\n",
      "helper.py": "VALUE = 1\n",
    };
    const { dir, manifest } = await scanApp(files);
    const moved = join(await tempDir("envpack-py-moved-"), "deeper", "place");
    await cp(dir, moved, { recursive: true });
    const again = await scan({
      entries: ["main.py"],
      cwd: moved,
      env: fixture().prefix,
      generatorVersion: "test",
    });
    expect(again.root).toBe(moved);
    expect(again.inputDigest).toBe(manifest.inputDigest);
    await writeFile(join(moved, "helper.py"), "VALUE = 2\n");
    const edited = await scan({
      entries: ["main.py"],
      cwd: moved,
      env: fixture().prefix,
      generatorVersion: "test",
    });
    expect(edited.inputDigest).not.toBe(manifest.inputDigest);
  });
});

/** A prefix with metadata only: no interpreter, so compiled-in modules come from (absent) libpython symbols. */
async function tinyPrefix(
  records: Record<string, unknown>,
  siteFiles: Record<string, string> = {},
): Promise<string> {
  const prefix = await tempDir("envpack-tiny-prefix-");
  await mkdir(join(prefix, "conda-meta"));
  for (const [file, record] of Object.entries(records)) {
    await writeFile(
      join(prefix, "conda-meta", file),
      typeof record === "string" ? record : JSON.stringify(record),
    );
  }
  await writeApp(join(prefix, "lib", "python3.12", "site-packages"), siteFiles);
  return prefix;
}

const pythonRecord = {
  name: "python",
  version: "3.12.1",
  build: "h0_cpython",
  subdir: "linux-aarch64",
  channel: "https://conda.example.invalid/conda-forge/linux-aarch64",
  md5: "0123456789abcdef0123456789abcdef",
  depends: ["libzlib >=1.3"],
  files: [
    "bin/python3.12",
    "lib/python3.12/os.py",
    "lib/python3.12/json/__init__.py",
    "lib/python3.12/lib-dynload/_ssl.cpython-312-aarch64-linux-gnu.so",
  ],
};

describe("python scan: module names come from metadata", () => {
  it("maps yaml→pyyaml, PIL→pillow and sklearn→scikit-learn from conda-meta files, RECORD and top_level.txt", async () => {
    const prefix = await tinyPrefix(
      {
        "python-3.12.1-h0_cpython.json": pythonRecord,
        "libzlib-1.3-h0.json": {
          name: "libzlib",
          version: "1.3",
          build: "h0",
          depends: [],
          files: ["lib/libz.so.1"],
        },
        "pyyaml-6.0.1-py312h0.json": {
          name: "pyyaml",
          version: "6.0.1",
          build: "py312h0",
          sha256: "a".repeat(64),
          depends: ["python >=3.12,<3.13.0a0", "yaml >=0.2.5,<0.3.0a0"],
          files: [
            "lib/python3.12/site-packages/PyYAML-6.0.1.dist-info/METADATA",
            "lib/python3.12/site-packages/PyYAML-6.0.1.dist-info/INSTALLER",
            "lib/python3.12/site-packages/_yaml/__init__.py",
            "lib/python3.12/site-packages/yaml/__init__.py",
            "lib/python3.12/site-packages/yaml/_yaml.cpython-312-aarch64-linux-gnu.so",
          ],
        },
      },
      {
        "PyYAML-6.0.1.dist-info/METADATA":
          "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n",
        "PyYAML-6.0.1.dist-info/INSTALLER": "conda\n",
        "pillow-10.2.0.dist-info/METADATA":
          "Metadata-Version: 2.1\nName: pillow\nVersion: 10.2.0\nRequires-Dist: numpy\nRequires-Dist: PyYAML ; python_version >= '3'\n",
        "pillow-10.2.0.dist-info/INSTALLER": "pip\n",
        "pillow-10.2.0.dist-info/RECORD":
          "PIL/__init__.py,sha256=x,1\nPIL/_imaging.cpython-312-aarch64-linux-gnu.so,sha256=y,2\npillow-10.2.0.dist-info/RECORD,,\n",
        "scikit_learn-1.4.0.dist-info/METADATA":
          "Metadata-Version: 2.1\nName: scikit-learn\nVersion: 1.4.0\nRequires-Dist: Pillow\nRequires-Dist: pytest ; extra == 'tests'\n\nbody: text\n",
        "scikit_learn-1.4.0.dist-info/INSTALLER": "pip\n",
        "scikit_learn-1.4.0.dist-info/top_level.txt": "sklearn\n",
      },
    );
    const { manifest } = await scanApp(
      {
        "main.py":
          "import yaml\nfrom PIL import Image\nimport sklearn.linear_model\nimport os, json, _ssl\n",
      },
      { env: prefix },
    );
    expect(manifest.imports.map((i) => [i.specifier, i.resolved])).toEqual([
      ["yaml", "package:conda:pyyaml"],
      ["PIL", "package:pip:pillow"],
      ["sklearn.linear_model", "package:pip:scikit-learn"],
      ["_ssl", "builtin"],
      ["json", "builtin"],
      ["os", "builtin"],
    ]);
    expect(manifest.runtime).toEqual({
      name: "python",
      version: "3.12.1",
      implementation: "cpython",
      platform: "linux-aarch64",
    });
    expect(manifest.env?.sitePackages).toBe("lib/python3.12/site-packages");
    expect(
      manifest.packages.map((p) => [p.id, p.reason, p.dependencies]),
    ).toEqual([
      ["conda:libzlib", "dependency", []],
      ["conda:python", "interpreter", ["conda:libzlib"]],
      ["conda:pyyaml", "import", ["conda:python"]],
      ["pip:pillow", "import", ["conda:pyyaml"]],
      ["pip:scikit-learn", "import", ["pip:pillow"]],
    ]);
    expect(pkg(manifest, "conda:python")).toMatchObject({
      integrity: "md5:0123456789abcdef0123456789abcdef",
      integritySource: "conda-meta",
    });
    expect(pkg(manifest, "pip:scikit-learn")).toMatchObject({
      name: "scikit-learn",
      integrity: null,
      integritySource: "none",
    });
    expect(manifest.packages.some((p) => p.id === "pip:pyyaml")).toBe(false);
  });
});

describe("python scan: bad --env", () => {
  const app = { "main.py": "import os\n" };

  it("fails with ENVPACK_INPUT_ENV_NOT_FOUND for a missing prefix", async () => {
    const error = await scanError(
      scanApp(app, { env: join(await tempDir(), "nope") }),
    );
    expect(error.code).toBe("ENVPACK_INPUT_ENV_NOT_FOUND");
    expect(error.exitCode).toBe(2);
    expect(error.hint).toBeTruthy();
  });

  it("fails with ENVPACK_INPUT_ENV_NOT_CONDA for a directory without conda-meta", async () => {
    const error = await scanError(scanApp(app, { env: await tempDir() }));
    expect(error.code).toBe("ENVPACK_INPUT_ENV_NOT_CONDA");
  });

  it("fails with ENVPACK_INPUT_ENV_NO_PYTHON when no record is python", async () => {
    const prefix = await tinyPrefix({
      "six-1.17.0-py_0.json": { name: "six", version: "1.17.0", files: [] },
    });
    const error = await scanError(scanApp(app, { env: prefix }));
    expect(error.code).toBe("ENVPACK_INPUT_ENV_NO_PYTHON");
  });

  it("fails with ENVPACK_INPUT_ENV_CORRUPT naming a record that is not JSON", async () => {
    const prefix = await tinyPrefix({
      "python-3.12.1-h0_cpython.json": pythonRecord,
      "six-1.17.0-py_0.json": '{"name": "six", "vers',
    });
    const error = await scanError(scanApp(app, { env: prefix }));
    expect(error.code).toBe("ENVPACK_INPUT_ENV_CORRUPT");
    expect(error.message).toContain("six-1.17.0-py_0.json");
    expect(error.details).toEqual({
      file: join(prefix, "conda-meta", "six-1.17.0-py_0.json"),
    });
  });
});
