// Reading one conda-meta record: a well-formed record is taken as the schema takes it (its fields
// in order, unknown keys dropped, arrays copied); anything else is refused with the schema's words.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EnvpackError, readCondaRecord } from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

async function read(json: unknown) {
  const file = join(await tempDir(), "pkg-1.0-0.json");
  await writeFile(file, JSON.stringify(json));
  return readCondaRecord(file);
}

async function problemOf(json: unknown): Promise<string> {
  const error: unknown = await read(json).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EnvpackError);
  expect((error as EnvpackError).code).toBe("ENVPACK_INPUT_ENV_CORRUPT");
  return (error as EnvpackError).message;
}

describe("readCondaRecord", () => {
  it("keeps the record's fields in the schema's order, drops the rest and copies arrays", async () => {
    const json = {
      md5: "m",
      files: ["bin/x", "lib/y.py"],
      url: "https://example.invalid/pkg.conda",
      depends: ["python >=3.9"],
      subdir: "linux-64",
      name: "pkg",
      paths_data: { paths: [] },
      build: "0",
      version: "1.0",
      sha256: "s",
      channel: "conda-forge",
    };
    const { record, json: whole } = await read(json);
    expect(Object.keys(record)).toEqual([
      "name",
      "version",
      "build",
      "channel",
      "subdir",
      "depends",
      "files",
      "sha256",
      "md5",
    ]);
    expect(record).toEqual({
      name: "pkg",
      version: "1.0",
      build: "0",
      channel: "conda-forge",
      subdir: "linux-64",
      depends: ["python >=3.9"],
      files: ["bin/x", "lib/y.py"],
      sha256: "s",
      md5: "m",
    });
    expect(whole).toEqual(json);
    expect(record.files).not.toBe(whole["files"]);
    const minimal = await read({ name: "a", version: "0", extra: [1] });
    expect(minimal.record).toEqual({ name: "a", version: "0" });
    expect(Object.keys(minimal.record)).toEqual(["name", "version"]);
  });

  it.each([
    ["an array", [{ name: "a", version: "1" }], "(root)"],
    ["null", null, "(root)"],
    ["no name", { version: "1" }, "name"],
    ["an empty name", { name: "", version: "1" }, "name"],
    ["a numeric version", { name: "a", version: 1 }, "version"],
    ["a null build", { name: "a", version: "1", build: null }, "build"],
    ["a string for files", { name: "a", version: "1", files: "x" }, "files"],
    [
      "a number among depends",
      { name: "a", version: "1", depends: ["x", 2] },
      "depends.1",
    ],
    ["an object for md5", { name: "a", version: "1", md5: {} }, "md5"],
  ])("refuses %s, naming the field", async (_, json, field) => {
    expect(await problemOf(json)).toContain(`: ${field}: `);
  });
});
