// compileApp: every TypeScript file of the app compiled by esbuild at once, the result and the
// first failure independent of which file esbuild finishes first.

import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
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

  it("keeps outputs in the cache: a rebuild compiles only changed files, same bytes", async () => {
    const dir = await app({ "a.ts": "export const a: string = 'a';\n" });
    await writeFile(join(dir, "lib.ts"), "export const lib = 1;\n");
    await writeFile(
      join(dir, "b.ts"),
      "import { lib } from './lib';\nexport const b = lib;\n",
    );
    await writeFile(
      join(dir, "main.ts"),
      "import './a.js';\nimport './b.js';\n",
    );
    const cacheDir = join(await tempDir(), "cache");
    const store = join(cacheDir, "compiled");
    const text = (files: Map<string, { data: Uint8Array }>) =>
      Object.fromEntries(
        [...files].map(([k, v]) => [k, Buffer.from(v.data).toString()]),
      );
    const compile = async () => {
      const manifest = await scan({ entries: ["main.ts"], cwd: dir });
      const cached = text(await compileApp(manifest, { cacheDir }));
      expect(cached).toEqual(text(await compileApp(manifest)));
      return cached;
    };
    const first = await compile();
    expect(await readdir(store)).toHaveLength(4);
    expect(await compile()).toEqual(first);
    expect(await readdir(store)).toHaveLength(4);

    // An edit: one new output.
    await writeFile(join(dir, "a.ts"), "export const a: string = 'A';\n");
    expect((await compile())["a.ts"]).toContain('"A"');
    expect(await readdir(store)).toHaveLength(5);

    // b.ts unchanged, its import now resolving elsewhere: compiled again, pointing there.
    await rm(join(dir, "lib.ts"));
    await mkdir(join(dir, "lib"));
    await writeFile(join(dir, "lib", "index.ts"), "export const lib = 2;\n");
    expect((await compile())["b.ts"]).toContain('"./lib/index.js"');

    // Damaged entries (a short write, another key's output) are compiled afresh.
    const entries = await readdir(store);
    for (const [i, name] of entries.entries())
      await writeFile(
        join(store, name),
        i % 2 === 0
          ? '{"format":"envpack-compiled/1","key":"sha256:00","code":"x"}'
          : '{"format":"envpack-compiled/1","ke',
      );
    const again = await compile();
    expect(again["b.ts"]).toContain('"./lib/index.js"');
  });
});
