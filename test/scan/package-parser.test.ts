// Plain JavaScript is read by meriyah (a package's, in the CLI, by oxc-parser), TypeScript by
// oxc-parser, whatever they reject by babel, and a package's module holding only static imports
// by es-module-lexer: every reading must find the same import sites, on real packages and on the
// shapes the visitor has to get right.

import { readFile, readdir } from "node:fs/promises";
import { extname, join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import {
  findImports,
  findImportsWithBabel,
  findImportsWithOxc,
  lexStaticImports,
  parseWithOxc,
  parseWithMeriyah,
} from "../../src/scan/js/find-imports.js";

const SOURCE = new Set([".js", ".cjs", ".mjs"]);
/** The scan's test for a file worth reading at all (find-imports.ts). */
const MAY_IMPORT = /\b(?:import|require|export|createRequire)\b/;

/** What the scanner takes from a package file's babel reading: its sites, none if it fails. */
function babelSites(text: string, ext: string) {
  const found = findImportsWithBabel(text, ext);
  return found.problem ? [] : found.sites;
}

/** The realworld fixture app's directory. */
function realworld(): string {
  const dir = inject("fixtures").apps["realworld"];
  if (dir === undefined)
    throw new Error("the realworld fixture app was not installed");
  return dir;
}

/** The files under `dir`, recursively, whose extension is one of `extensions`. */
async function filesUnder(
  dir: string,
  extensions: ReadonlySet<string>,
): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile() && extensions.has(extname(e.name)))
    .map((e) => join(e.parentPath, e.name));
}

describe("package files read by meriyah", () => {
  it("find the same sites as babel in every JavaScript file of the realworld app's node_modules", async () => {
    const files = await filesUnder(join(realworld(), "node_modules"), SOURCE);
    expect(files.length).toBeGreaterThan(1000);
    let readByMeriyah = 0;
    let readByOxc = 0;
    let lexed = 0;
    let sites = 0;
    const differing: string[] = [];
    const differingAsApp: string[] = [];
    const differingByOxc: string[] = [];
    for (const file of files) {
      const text = await readFile(file, "utf8");
      const ext = extname(file);
      const found = findImports(text, ext, true);
      expect(found.problem).toBeUndefined();
      if (parseWithMeriyah(text, ext) !== null) readByMeriyah++;
      if (MAY_IMPORT.test(text) && lexStaticImports(text, ext) !== null)
        lexed++;
      sites += found.sites.length;
      const babel = findImportsWithBabel(text, ext);
      if (
        JSON.stringify(found.sites) !==
        JSON.stringify(babel.problem ? [] : babel.sites)
      )
        differing.push(file);
      // Read by oxc-parser, as the CLI reads a package's files.
      const oxc = findImportsWithOxc(text, ext);
      if (oxc !== null) {
        readByOxc++;
        if (
          JSON.stringify(oxc.sites) !==
          JSON.stringify(babel.problem ? [] : babel.sites)
        )
          differingByOxc.push(file);
      }
      // Read as an app file: meriyah without proposals, or babel, and the same answer.
      if (JSON.stringify(findImports(text, ext)) !== JSON.stringify(babel))
        differingAsApp.push(file);
    }
    expect(differing).toEqual([]);
    expect(differingAsApp).toEqual([]);
    expect(differingByOxc).toEqual([]);
    // The fast paths are really taken, and the files really have imports to agree on.
    expect(readByMeriyah).toBeGreaterThan(files.length * 0.95);
    expect(readByOxc).toBeGreaterThan(files.length * 0.9);
    expect(lexed).toBeGreaterThan(files.length * 0.2);
    expect(sites).toBeGreaterThan(2000);
  }, 300_000);

  const cases: Array<[string, string, string]> = [
    [
      "CommonJS with try/catch, require.resolve, createRequire and patterns",
      ".js",
      [
        "'use strict';",
        "const a = require('./a');",
        "try {",
        "  require(`optional-${process.platform}`);",
        "} catch {}",
        "const r = require('module').createRequire(__filename);",
        "r('via-create-require');",
        "require.resolve('./b.json');",
        "const c = require('./lib/' + name + '.js');",
        "require(name);",
        "return;",
      ].join("\n"),
    ],
    [
      "an ES module with re-exports, dynamic import and import.meta",
      ".mjs",
      [
        "import x, { y as z } from 'pkg/sub';",
        "export * from './star.js';",
        'export { w } from "./w.js";',
        "const m = await import(`./locale/${lang}.js`);",
        "const u = new URL('./asset.wasm', import.meta.url);",
        "import.meta.resolve('./other.js');",
      ].join("\n"),
    ],
    [
      "a createRequire alias called where no require/import word is near",
      ".cjs",
      [
        "const { createRequire } = require('module');",
        "const load = createRequire(__filename);",
        "function f() {",
        "  return load('./nested-alias');",
        "}",
      ].join("\n"),
    ],
    [
      "lines ended by \\r\\n, \\r and U+2028",
      ".cjs",
      "// one\r\n// two\rconst s = '\u2028';\u2028require('./after-breaks');\n",
    ],
    [
      "site words run together inside one identifier or string",
      ".mjs",
      [
        "const requirexport = 'requirequire' + dirnamexport;",
        "export * from './after-overlaps.js';",
        "const { URLimport } = await import('./dynamic.js');",
      ].join("\n"),
    ],
    [
      "a .js file that opens with import but is CommonJS further down",
      ".js",
      "import('./dyn.js');\nmodule.exports = require('./cjs');\n",
    ],
  ];
  it.each(cases)("%s: the same sites as babel", (_, ext, text) => {
    expect(parseWithMeriyah(text, ext)).not.toBeNull();
    const sites = findImports(text, ext, true).sites;
    expect(sites.length).toBeGreaterThan(0);
    expect(sites).toEqual(babelSites(text, ext));
  });

  it.each(cases)(
    "%s, as an app file: the same sites as babel",
    (_, ext, text) => {
      expect(parseWithMeriyah(text, ext, false)).not.toBeNull();
      expect(findImports(text, ext)).toEqual(findImportsWithBabel(text, ext));
    },
  );

  it("an app file with a proposal, or with a syntax error, gets babel's answer", () => {
    const decorated = "@sealed\nclass A {}\nrequire('./decorated');\n";
    expect(parseWithMeriyah(decorated, ".js", false)).toBeNull();
    expect(parseWithMeriyah(decorated, ".js")).not.toBeNull();
    expect(findImports(decorated, ".js")).toEqual(
      findImportsWithBabel(decorated, ".js"),
    );
    const broken = "import x from './x.js';\nconst = 1;\n";
    const found = findImports(broken, ".js");
    expect(found.problem).toMatchObject({ reason: "syntax-error", line: 2 });
    expect(found).toEqual(findImportsWithBabel(broken, ".js"));
  });

  it("a package's module of static imports only is lexed, with the parsers' sites", () => {
    const text = [
      "// import fake from './in-comment.js'",
      "import{a}from'./packed.js';export*from\"./star.js\"",
      "const s = \"import no from './in-string.js'\";",
      "export {",
      "  b as c,",
      "} from './multi-line.js';",
      "import json from './data.json' with { type: 'json' };",
      "import '\\u0061bc';",
      "const t = `export * from './in-template.js'`;\r\nexport * as ns from './after-crlf.js';",
      "export const d = 1;",
    ].join("\n");
    const lexed = lexStaticImports(text, ".mjs");
    expect(lexed?.map((s) => s.target)).toEqual(
      [
        "./packed.js",
        "./star.js",
        "./multi-line.js",
        "./data.json",
        "abc",
        "./after-crlf.js",
      ].map((specifier) => ({ type: "literal", specifier })),
    );
    expect(lexed).toEqual(babelSites(text, ".mjs"));
    expect(findImports(text, ".js", true).sites).toEqual(lexed);
    // A dynamic import, import.meta or a require word anywhere: the parsers read the whole file.
    for (const more of [
      "await import('./d.js');",
      "import.meta.url;",
      "// require",
    ])
      expect(lexStaticImports(`${text}\n${more}`, ".mjs")).toBeNull();
    expect(lexStaticImports(text, ".cjs")).toBeNull();
  });

  it("a file meriyah rejects is read by babel, with babel's recovery", () => {
    // An octal escape in a template is a syntax error babel's recovery gets past.
    const text = "const t = `\\01`;\nrequire('./still-found');\n";
    expect(parseWithMeriyah(text, ".js")).toBeNull();
    const found = findImports(text, ".js", true);
    expect(found).toEqual(findImportsWithBabel(text, ".js"));
    expect(found.sites.map((s) => s.target)).toEqual([
      { type: "literal", specifier: "./still-found" },
    ]);
  });
});

describe("TypeScript read by oxc-parser", () => {
  const TYPESCRIPT = new Set([".ts", ".tsx", ".mts", ".cts"]);

  it("finds babel's answer in every TypeScript file of envpack and of the realworld app's node_modules", async () => {
    const root = join(import.meta.dirname, "..", "..");
    const files = [
      ...(
        await Promise.all(
          ["src", "packer", "test", "bench", "scripts"].map((d) =>
            filesUnder(join(root, d), TYPESCRIPT),
          ),
        )
      ).flat(),
      ...(await filesUnder(join(realworld(), "node_modules"), TYPESCRIPT)),
    ];
    expect(files.length).toBeGreaterThan(1000);
    let readByOxc = 0;
    let sites = 0;
    const differing: string[] = [];
    for (const file of files) {
      const text = await readFile(file, "utf8");
      const ext = extname(file);
      if (parseWithOxc(text, ext) !== null) readByOxc++;
      const found = findImports(text, ext);
      sites += found.sites.length;
      if (
        JSON.stringify(found) !==
        JSON.stringify(findImportsWithBabel(text, ext))
      )
        differing.push(file);
    }
    expect(differing).toEqual([]);
    // The native path is really taken, and the files really have imports to agree on.
    expect(readByOxc).toBeGreaterThan(files.length * 0.95);
    expect(sites).toBeGreaterThan(3000);
  }, 300_000);

  const cases: Array<[string, string, string]> = [
    [
      "type-only imports and exports beside value ones",
      ".ts",
      [
        "import type { A } from './types-only';",
        "import { type B, c } from './mixed';",
        "import { type D } from './all-types-named';",
        "export type { E } from './export-type';",
        "export type * from './export-type-star';",
        "export * as ns from './namespace';",
        "const v: import('./type-query').T = c;",
        "let w: typeof import('./typeof-import');",
        "interface I { x: import('./in-interface').X }",
      ].join("\n"),
    ],
    [
      "import = require, export =, createRequire and wrapped requires",
      ".cts",
      [
        "import fs = require('node:fs');",
        "import type Only = require('./type-equals');",
        "const r = require('module').createRequire(__filename);",
        "r('./via-create-require');",
        "const x = require('./as-cast') as unknown as number;",
        "const y = require('./non-null')!;",
        "try { require('./optional'); } catch {}",
        "if (x) return;",
        "export = x;",
      ].join("\n"),
    ],
    [
      "an ES module with decorators, dynamic imports and files beside it",
      ".mts",
      [
        "import { dec } from './decorators.js';",
        "@dec class K { @dec m(): void {} }",
        "const lang = 'en';",
        "const m = await import(`./locale/${lang}.js`);",
        "const u = new URL('./asset.wasm', import.meta.url);",
        "import.meta.resolve('./other.js');",
        "const p = (await import('./parenthesised.js')) satisfies object;",
      ].join("\n"),
    ],
    [
      "JSX and text outside ASCII before the sites",
      ".tsx",
      [
        "const s = 'é😀\u2028';",
        "import Button from './button';",
        'export const view = <Button label="ü" />;',
        "const lazy = () => import('./lazy-view');",
      ].join("\n"),
    ],
  ];
  /** The specifiers each case's runtime sites name, type-only ones left out. */
  const expected: Record<string, string[]> = {
    "type-only imports and exports beside value ones": [
      "./mixed",
      "./namespace",
    ],
    "import = require, export =, createRequire and wrapped requires": [
      "node:fs",
      "module",
      "./via-create-require",
      "./as-cast",
      "./non-null",
      "./optional",
    ],
    "an ES module with decorators, dynamic imports and files beside it": [
      "./decorators.js",
      "./locale/",
      "./asset.wasm",
      "./other.js",
      "./parenthesised.js",
    ],
    "JSX and text outside ASCII before the sites": ["./button", "./lazy-view"],
  };
  it.each(cases)("%s: read natively, with babel's sites", (name, ext, text) => {
    expect(parseWithOxc(text, ext)).not.toBeNull();
    const found = findImports(text, ext);
    expect(
      found.sites.map((s) =>
        s.target.type === "literal"
          ? s.target.specifier
          : s.target.type === "pattern"
            ? s.target.prefix
            : s.target.text,
      ),
    ).toEqual(expected[name]);
    expect(found).toEqual(findImportsWithBabel(text, ext));
  });

  it("a TypeScript file with a syntax error gets babel's answer", () => {
    const broken = "import x from './x';\nconst : number = 1;\n";
    expect(parseWithOxc(broken, ".ts")).toBeNull();
    const found = findImports(broken, ".ts");
    expect(found.problem).toMatchObject({ reason: "syntax-error", line: 2 });
    expect(found).toEqual(findImportsWithBabel(broken, ".ts"));
  });

  it("JSX files and CommonJS that returns at top level are not oxc-parser's to read", () => {
    expect(parseWithOxc("require('./x');", ".js")).not.toBeNull();
    expect(parseWithOxc("require('./x');", ".jsx")).toBeNull();
    // Script and module alike refuse it: meriyah (as CommonJS) reads it instead.
    const returns = "if (!process.env.X) return;\nrequire('./after-return');\n";
    expect(parseWithOxc(returns, ".js")).toBeNull();
    expect(findImports(returns, ".js", true).sites).toEqual(
      babelSites(returns, ".js"),
    );
  });
});
