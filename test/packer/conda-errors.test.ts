// Conda bundles refuse broken environments with coded errors, and conda-pack delegation reports a missing tool.

import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { makeCondaVariant } from "../../scripts/fixtures/conda.mjs";
import {
  packCondaWithCondaPack,
  planCondaBundle,
} from "../../packer/conda/index.js";
import { build } from "../../src/api/index.js";
import { InputError, ToolError } from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

function fixture() {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (error: unknown) => error,
  );
}

describe("planCondaBundle refuses", () => {
  it("editable installs, naming the packages", async () => {
    const variant = await makeCondaVariant(
      fixture(),
      "editable",
      join(await tempDir("envpack-conda-"), "root"),
    );
    const error = await failure(planCondaBundle({ prefix: variant.prefix }));
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({
      code: "ENVPACK_INPUT_ENV_EDITABLE",
      exitCode: 2,
      details: {
        packages: [
          {
            name: "fixture_editable",
            source: join(variant.root, "src", "fixture_editable"),
          },
        ],
      },
    });
    expect((error as InputError).hint).toBeTruthy();
  });

  it("missing managed files, naming package and path", async () => {
    const variant = await makeCondaVariant(
      fixture(),
      "missing-file",
      join(await tempDir("envpack-conda-"), "root"),
    );
    const error = await failure(planCondaBundle({ prefix: variant.prefix }));
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({
      code: "ENVPACK_INPUT_ENV_MISSING_FILES",
      details: {
        missing: [
          {
            package: "six",
            version: "1.17.0",
            paths: ["lib/python3.11/site-packages/six.py"],
          },
        ],
      },
    });
    expect((error as Error).message).toContain(
      "six 1.17.0: lib/python3.11/site-packages/six.py",
    );

    // Through build(): the planning failure is the build's error, and nothing is left behind.
    const cacheDir = join(await tempDir(), "cache");
    const app = await tempDir();
    await writeFile(join(app, "app.py"), "import six\n");
    const built = await failure(
      build({ entries: ["app.py"], cwd: app, env: variant.prefix, cacheDir }),
    );
    expect(built).toMatchObject({ code: "ENVPACK_INPUT_ENV_MISSING_FILES" });
    expect(await readdir(join(cacheDir, "tmp"))).toEqual([]);
  });

  it("an environment without python, whose interpreter would relocate it", async () => {
    const prefix = await tempDir("envpack-conda-");
    await mkdir(join(prefix, "conda-meta"));
    await writeFile(
      join(prefix, "conda-meta", "six-1.17.0-pyhd8ed1ab_0.json"),
      JSON.stringify({ name: "six", version: "1.17.0", files: [] }),
    );
    const error = await failure(planCondaBundle({ prefix }));
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({ code: "ENVPACK_INPUT_ENV_NO_PYTHON" });
  });

  it("a directory that is not a Conda environment", async () => {
    const error = await failure(
      planCondaBundle({ prefix: await tempDir("envpack-conda-") }),
    );
    expect(error).toMatchObject({ code: "ENVPACK_INPUT_ENV_NOT_CONDA" });
  });
});

describe("packCondaWithCondaPack", () => {
  it("reports a conda-pack that is not installed", async () => {
    const error = await failure(
      packCondaWithCondaPack({
        prefix: fixture().prefix,
        condaPackBin: "envpack-test-no-such-conda-pack",
      }),
    );
    expect(error).toBeInstanceOf(ToolError);
    expect(error).toMatchObject({
      code: "ENVPACK_TOOL_MISSING",
      exitCode: 1,
      details: { command: "envpack-test-no-such-conda-pack" },
    });
  });

  it("reports conda-pack's failure with its stderr tail", async () => {
    // conda-pack cannot be installed here: a script fails the way it does (exit 1, message on stderr).
    const base = await tempDir("envpack-conda-pack-");
    const fake = join(base, "conda-pack");
    await writeFile(
      fake,
      "#!/bin/sh\necho 'CondaPackError: Cannot pack an environment with editable packages' >&2\nexit 1\n",
      { mode: 0o755 },
    );
    const error = await failure(
      packCondaWithCondaPack({ prefix: fixture().prefix, condaPackBin: fake }),
    );
    expect(error).toMatchObject({
      code: "ENVPACK_TOOL_FAILED",
      details: {
        exitCode: 1,
        stderr:
          "CondaPackError: Cannot pack an environment with editable packages",
      },
    });
  });
});
