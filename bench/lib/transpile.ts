// Transpiles an app's TypeScript sources to JavaScript files beside them, for tracers that parse only JavaScript.

import {
  copyFile,
  mkdir,
  readFile,
  readdir,
  rm,
  writeFile,
} from "node:fs/promises";
import { extname, join } from "node:path";
import { transform } from "esbuild";

/**
 * Writes every file of `srcDir` (recursively) to `outDir`, `.ts` files transpiled to `.js`
 * (ESM, types stripped, import specifiers untouched) and other files copied. `outDir` is
 * emptied first. Returns how many files it wrote.
 */
export async function transpileTree(
  srcDir: string,
  outDir: string,
): Promise<number> {
  await rm(outDir, { recursive: true, force: true });
  let count = 0;
  const walk = async (from: string, to: string): Promise<void> => {
    await mkdir(to, { recursive: true });
    for (const entry of await readdir(from, { withFileTypes: true })) {
      const source = join(from, entry.name);
      if (entry.isDirectory()) {
        await walk(source, join(to, entry.name));
      } else if (entry.isFile() && extname(entry.name) === ".ts") {
        const { code } = await transform(await readFile(source, "utf8"), {
          loader: "ts",
          format: "esm",
          sourcefile: source,
        });
        await writeFile(join(to, `${entry.name.slice(0, -3)}.js`), code);
        count++;
      } else if (entry.isFile()) {
        await copyFile(source, join(to, entry.name));
        count++;
      }
    }
  };
  await walk(srcDir, outDir);
  return count;
}
