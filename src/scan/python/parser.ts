// The tree-sitter Python parser, initialised once per process.

import { createRequire } from "node:module";
import { Language, Parser } from "web-tree-sitter";

let loading: Promise<Language> | undefined;

/** The Python grammar, loaded once; a failed load is retried by the next caller. */
function pythonLanguage(): Promise<Language> {
  loading ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve(
      "tree-sitter-python/tree-sitter-python.wasm",
    );
    return Language.load(wasm);
  })().catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}

/** A parser for Python source. Parsers are cheap once the grammar is loaded; call `delete()` when done. */
export async function createPythonParser(): Promise<Parser> {
  const language = await pythonLanguage();
  return new Parser().setLanguage(language);
}
