// Write failures a user can fix are named with codes; everything else passes through.

import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError, isDirectory, writeFailure } from "../../src/core/index.js";
import { tempDir } from "../helpers/temp-dir.js";

async function failureOf(write: () => Promise<unknown>): Promise<unknown> {
  try {
    await write();
  } catch (error) {
    return error;
  }
  throw new Error("the write did not fail");
}

describe("writeFailure", () => {
  it("a full file system (a real ENOSPC from /dev/full) is ENVPACK_INPUT_NO_SPACE", async () => {
    const error = await failureOf(() => writeFile("/dev/full", "bytes"));
    const mapped = writeFailure(error, "/some/out", "--out directory");
    expect(mapped).toBeInstanceOf(InputError);
    expect((mapped as InputError).code).toBe("ENVPACK_INPUT_NO_SPACE");
    expect((mapped as InputError).exitCode).toBe(2);
    expect((mapped as InputError).details).toMatchObject({
      destination: "/some/out",
      errno: "ENOSPC",
    });
  });

  it("a path component that is a file is ENVPACK_INPUT_OUTPUT_UNWRITABLE", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "file"), "");
    const error = await failureOf(() =>
      mkdir(join(dir, "file", "sub"), { recursive: true }),
    );
    const mapped = writeFailure(error, join(dir, "file", "sub"));
    expect((mapped as InputError).code).toBe("ENVPACK_INPUT_OUTPUT_UNWRITABLE");
  });

  it("other errors are returned unchanged", async () => {
    const error = await failureOf(() =>
      writeFile(join("/nonexistent-dir-envpack", "x"), ""),
    );
    expect(writeFailure(error, "/x")).toBe(error);
    const plain = new Error("a bug");
    expect(writeFailure(plain, "/x")).toBe(plain);
  });
});

describe("isDirectory", () => {
  it("answers through links, takes missing for false and throws anything else", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "file"), "");
    await symlink("sub", join(dir, "link"));
    expect(await isDirectory(join(dir, "sub"))).toBe(true);
    expect(await isDirectory(join(dir, "link"))).toBe(true);
    expect(await isDirectory(join(dir, "file"))).toBe(false);
    expect(await isDirectory(join(dir, "missing"))).toBe(false);
    expect(await isDirectory(join(dir, "file", "below"))).toBe(false);
    await symlink("loop", join(dir, "loop"));
    await expect(isDirectory(join(dir, "loop"))).rejects.toMatchObject({
      code: "ELOOP",
    });
  });
});
