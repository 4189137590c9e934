// Declared dependencies: what the app's package.json names ships even when no import reaches it,
// unless the scan is asked for the import graph's closure only.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
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

async function scanCase(declared: boolean) {
  const work = await tempDir("envpack-declared-");
  const settings = await readCase(caseDir);
  await materialiseCase(caseDir, work, settings);
  return scan({
    entries: settings.entries,
    cwd: work,
    generatorVersion: "test",
    declared,
  });
}

describe("declared dependencies", () => {
  it("ship by default with reason declared; declared:false keeps the strict closure and changes the input digest", async () => {
    const full = await scanCase(true);
    const strict = await scanCase(false);
    const reasons = Object.fromEntries(
      full.packages.map((p) => [p.name, p.reason]),
    );
    expect(reasons).toEqual({
      "imported-c": "import",
      "plugin-a": "declared",
      "plugin-a-helper": "dependency",
    });
    expect(strict.packages.map((p) => p.name)).toEqual(["imported-c"]);
    expect(
      strict.unresolved.filter((u) => u.reason === "not-installed"),
    ).toEqual([]);
    expect(strict.inputDigest).not.toBe(full.inputDigest);
  });
});
