import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  canonicalJson,
  computeInputDigest,
  manifestSchema,
  MANIFEST_SCHEMA_VERSION,
  parseManifest,
  type Manifest,
} from "../../src/core/index.js";

function sample(): Manifest {
  const base = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    kind: "node" as const,
    generator: { name: "envpack" as const, version: "0.0.0" },
    runtime: {
      name: "node" as const,
      version: "20.0.0",
      platform: "linux-x64",
    },
    root: "/somewhere",
    entries: ["src/main.ts"],
    files: [
      {
        path: "src/main.ts",
        sha256: "a".repeat(64),
        size: 10,
        role: "entry" as const,
      },
    ],
    packages: [
      {
        id: "node_modules/x",
        name: "x",
        version: "1.0.0",
        manager: "npm" as const,
        path: "node_modules/x",
        integrity: "sha512-abc",
        integritySource: "lockfile" as const,
        dependencies: [],
        reason: "import" as const,
      },
    ],
    imports: [],
    unresolved: [],
  };
  return { ...base, inputDigest: computeInputDigest(base) };
}

describe("canonicalJson", () => {
  it("sorts keys at every level and drops undefined", () => {
    expect(
      canonicalJson({
        b: 1,
        a: { d: [2, { z: 1, y: undefined, x: 0 }], c: null },
      }),
    ).toBe('{"a":{"c":null,"d":[2,{"x":0,"z":1}]},"b":1}');
  });
});

describe("computeInputDigest", () => {
  it("ignores the root path, the generator and import records", () => {
    const m = sample();
    const moved = {
      ...m,
      root: "/elsewhere/deeper",
      generator: { name: "envpack" as const, version: "9.9.9" },
      imports: [],
    };
    expect(computeInputDigest(moved)).toBe(m.inputDigest);
  });

  it("changes with an app file's hash, a package's integrity or version, and the platform", () => {
    const m = sample();
    const file = { ...m, files: [{ ...m.files[0]!, sha256: "b".repeat(64) }] };
    const pkg = {
      ...m,
      packages: [{ ...m.packages[0]!, integrity: "sha512-other" }],
    };
    const version = {
      ...m,
      packages: [{ ...m.packages[0]!, version: "1.0.1" }],
    };
    const platform = {
      ...m,
      runtime: { ...m.runtime, platform: "linux-arm64" },
    };
    const digests = new Set(
      [m, file, pkg, version, platform].map((x) => computeInputDigest(x)),
    );
    expect(digests.size).toBe(5);
  });

  it("does not depend on the order of files and packages", () => {
    const m = sample();
    const two = {
      ...m,
      files: [...m.files, { ...m.files[0]!, path: "src/a.ts" }],
    };
    const reversed = { ...two, files: [...two.files].reverse() };
    expect(computeInputDigest(reversed)).toBe(computeInputDigest(two));
  });
});

describe("parseManifest", () => {
  it("accepts a sealed manifest", () => {
    const m = sample();
    expect(parseManifest(JSON.parse(JSON.stringify(m)), "m.json")).toEqual(m);
  });

  it("rejects a wrong shape with ENVPACK_INPUT_MANIFEST_INVALID naming the field", () => {
    const bad = { ...sample(), packages: [{ name: 1 }] };
    expect(() => parseManifest(bad, "m.json")).toThrow(
      expect.objectContaining({
        code: "ENVPACK_INPUT_MANIFEST_INVALID",
        exitCode: 2,
      }),
    );
    expect(() => parseManifest(bad, "m.json")).toThrow(/packages\.0/);
  });

  it("manifestSchema, built on first use, is the zod schema parseManifest checks with", () => {
    const m = sample();
    expect(manifestSchema).toBeInstanceOf(z.ZodObject);
    expect(Object.keys(manifestSchema.shape)).toContain("inputDigest");
    expect(manifestSchema.parse(JSON.parse(JSON.stringify(m)))).toEqual(m);
    expect(manifestSchema.safeParse({ ...m, packages: [{ name: 1 }] })).toEqual(
      expect.objectContaining({ success: false }),
    );
    // It composes like any zod schema.
    expect(z.array(manifestSchema).safeParse([m]).success).toBe(true);
  });

  it("rejects a hand-edited manifest whose digest no longer matches", () => {
    const edited = { ...sample(), entries: ["src/other.ts"] };
    expect(() => parseManifest(edited, "m.json")).toThrow(/does not match/);
  });
});

describe("package paths", () => {
  it("a package's path and links are part of the input digest", () => {
    const m = sample();
    const moved = {
      ...m,
      packages: [{ ...m.packages[0]!, path: "lookalike/x" }],
    };
    const linked = {
      ...m,
      packages: [{ ...m.packages[0]!, links: ["node_modules/y"] }],
    };
    expect(computeInputDigest(moved)).not.toBe(m.inputDigest);
    expect(computeInputDigest(linked)).not.toBe(m.inputDigest);
  });

  it("parseManifest refuses absolute and escaping paths, even with a matching digest", () => {
    for (const path of ["/etc", "../../..", "node_modules/../../x", "a\\b"]) {
      const m = sample();
      const { inputDigest: _, ...rest } = {
        ...m,
        packages: [{ ...m.packages[0]!, path }],
      };
      const forged = { ...rest, inputDigest: computeInputDigest(rest) };
      expect(() => parseManifest(forged, "m.json")).toThrow(
        expect.objectContaining({ code: "ENVPACK_INPUT_MANIFEST_INVALID" }),
      );
    }
    const m = sample();
    const { inputDigest: _, ...rest } = { ...m, entries: ["/abs/main.ts"] };
    expect(() =>
      parseManifest({ ...rest, inputDigest: computeInputDigest(rest) }, "m"),
    ).toThrow(/entries\.0/);
    expect(parseManifest(sample(), "m.json").packages[0]!.path).toBe(
      "node_modules/x",
    );
  });
});
