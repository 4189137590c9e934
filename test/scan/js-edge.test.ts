// Edge cases of the JS scanner that need files made at test time.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  MAX_SOURCE_BYTES,
  readSource,
  readSourceText,
} from "../../src/scan/scan-result.js";
import { scan } from "../../src/scan/index.js";
import { tempDir } from "../helpers/temp-dir.js";

const run = (cwd: string, entries: string[], signal?: AbortSignal) =>
  scan({ entries, cwd, generatorVersion: "test", signal });

describe("JS scanner edge cases", () => {
  it("lists a huge file as too-large without parsing it, and keeps its hash", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "main.js"), 'require("./huge.js");\n');
    await writeFile(
      join(dir, "huge.js"),
      "// " + "x".repeat(MAX_SOURCE_BYTES) + '\nrequire("never-seen");\n',
    );
    const manifest = await run(dir, ["main.js"]);
    const huge = manifest.files.find((f) => f.path === "huge.js");
    expect(huge?.problem?.reason).toBe("too-large");
    expect(huge?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.unresolved).toEqual([]);
  });

  it("reads a package file's text as readSource does: decoded alike, none for binary or huge files", async () => {
    const dir = await tempDir();
    const files: Array<[string, Buffer]> = [
      ["bom-and-accents.js", Buffer.from("\ufeffrequire('./é');\n// ✓\n")],
      // A lone continuation byte and a cut-off sequence: both decoders put U+FFFD there.
      ["invalid-utf8.js", Buffer.from([0x72, 0x80, 0x0a, 0xe2, 0x82])],
      ["empty.js", Buffer.alloc(0)],
      ["nul.js", Buffer.from("require('./x');\0\n")],
      ["huge.js", Buffer.alloc(MAX_SOURCE_BYTES + 1, 0x20)],
    ];
    for (const [name, bytes] of files) {
      const path = join(dir, name);
      await writeFile(path, bytes);
      const expected = (await readSource(path, false)).text;
      expect(await readSourceText(path)).toBe(expected);
      expect(expected === undefined).toBe(
        name === "nul.js" || name === "huge.js",
      );
    }
    await expect(readSourceText(join(dir, "missing.js"))).rejects.toMatchObject(
      { code: "ENOENT" },
    );
  });

  it("an entry with a syntax error is listed with its position and other entries are still scanned", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "bad.ts"), "const = 1;\n");
    await writeFile(join(dir, "good.ts"), 'import "./dep";\n');
    await writeFile(join(dir, "dep.ts"), "export {};\n");
    const manifest = await run(dir, ["bad.ts", "good.ts"]);
    expect(
      manifest.files.find((f) => f.path === "bad.ts")?.problem,
    ).toMatchObject({ reason: "syntax-error", line: 1, column: 7 });
    expect(manifest.files.map((f) => f.path)).toContain("dep.ts");
  });

  it("a declaration-only module imported by a TS file is not reported as missing", async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, "main.ts"),
      'import { Shape } from "./shape";\nexport const s: Shape = { n: 1 };\n',
    );
    await writeFile(
      join(dir, "shape.d.ts"),
      "export interface Shape { n: number }\n",
    );
    const manifest = await run(dir, ["main.ts"]);
    expect(manifest.unresolved).toEqual([]);
  });

  it("honours an aborted signal", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "src"));
    await writeFile(join(dir, "src", "main.js"), "export {};\n");
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(run(dir, ["src/main.js"], controller.signal)).rejects.toThrow(
      "stop",
    );
  });
});
