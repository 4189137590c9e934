import { describe, expect, it } from "vitest";
import { rewriteSpecifiers } from "../../src/scan/index.js";

describe("rewriteSpecifiers", () => {
  it("rewrites literal specifiers of every form and leaves the rest of the text alone", () => {
    const text = [
      'import a from "./a";',
      "export * from './b';",
      "const c = require(`./c`);",
      'const d = await import("./d");',
      'import e = require("./e");',
      'const f = require("pkg");',
      "const g = require(name);",
    ].join("\n");
    const out = rewriteSpecifiers(text, ".ts", (s) =>
      s.startsWith("./") ? `${s}.js` : undefined,
    );
    expect(out).toBe(
      [
        'import a from "./a.js";',
        'export * from "./b.js";',
        'const c = require("./c.js");',
        'const d = await import("./d.js");',
        'import e = require("./e.js");',
        'const f = require("pkg");',
        "const g = require(name);",
      ].join("\n"),
    );
  });
});
