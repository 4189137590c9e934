// compileApp: every TypeScript file of the app compiled by esbuild at once, the result and the
// first failure independent of which file esbuild finishes first.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileApp } from "../../src/api/compile-app.js";
import { scan } from "../../src/api/index.js";
import { tempDir } from "../helpers/temp-dir.js";

/** An app whose main.ts imports every other file given. */
async function app(files: Record<string, string>): Promise<string> {
  const dir = await tempDir();
  const others = Object.keys(files);
  await writeFile(
    join(dir, "main.ts"),
    others.map((f) => `import "./${f.replace(/\.ts$/, ".js")}";`).join("\n") +
      "\nconst n: number = 1;\nconsole.log(n);\n",
  );
  for (const [name, text] of Object.entries(files))
    await writeFile(join(dir, name), text);
  return dir;
}

describe("compileApp", () => {
  it("compiles every TypeScript file, keyed in the manifest's order, imports pointing at .js", async () => {
    const dir = await app({
      "a.ts": "export const a: string = 'a';\n",
      "b.ts": "export const b: number = 2;\n",
    });
    const manifest = await scan({ entries: ["main.ts"], cwd: dir });
    const compiled = await compileApp(manifest);
    expect([...compiled.keys()]).toEqual(["a.ts", "b.ts", "main.ts"]);
    expect([...compiled.values()].map((c) => c.path)).toEqual([
      "a.js",
      "b.js",
      "main.js",
    ]);
    const main = Buffer.from(compiled.get("main.ts")?.data ?? []).toString();
    expect(main).toContain('"./a.js"');
    expect(main).not.toContain(": number");
  });

  it("reports the first file in the manifest's order that does not compile", async () => {
    // Babel reads these (recovering from the duplicate export); esbuild refuses them.
    const twice = "export default 1;\nexport default 2;\n";
    const dir = await app({ "a.ts": twice, "z.ts": twice });
    const manifest = await scan({ entries: ["main.ts"], cwd: dir });
    for (let i = 0; i < 3; i++) {
      await expect(compileApp(manifest)).rejects.toMatchObject({
        code: "ENVPACK_INPUT_ENTRY_UNSUPPORTED",
        message: expect.stringMatching(/^a\.ts does not compile: /),
      });
    }
  });
});
