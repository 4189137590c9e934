// A writable copy of the Conda fixture (one where another package lists a file of python's too),
// and the two ways a record changes under a build: replaced by a rename (a new inode, as conda
// writes it) or edited in place with its size and times kept (only its content tells).

import {
  cp,
  readFile,
  readdir,
  rename,
  stat,
  utimes,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { expect, inject } from "vitest";
import { tempDir } from "./temp-dir.js";

/** Copies the Conda fixture (the caller changes it) and returns the copy's prefix. */
export async function copyCondaFixture(label: string): Promise<string> {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  const root = join(await tempDir(`envpack-${label}-`), "root");
  // Times kept: the byte code stays up to date with its sources, as in the fixture.
  await cp(conda.root, root, {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
  });
  return join(root, "envs", "demo");
}

/**
 * A copy of the Conda fixture whose six record lists python's `bin/python3.11` too: python's
 * entries (the runtime layer) are then final only once every record is decided.
 */
export async function copyWithPythonFileShared(label: string): Promise<string> {
  const prefix = await copyCondaFixture(label);
  const meta = join(prefix, "conda-meta");
  const six = (await readdir(meta)).find((f) => f.startsWith("six-"));
  if (six === undefined) throw new Error("no six record in the fixture");
  const record = JSON.parse(await readFile(join(meta, six), "utf8")) as {
    files: string[];
  };
  record.files.push("bin/python3.11");
  await writeFile(join(meta, six), JSON.stringify(record));
  return prefix;
}

/** Writes `path` anew with `from` replaced by `to`, and renames it over the old file. */
export async function replaceFile(
  path: string,
  from: string,
  to: string,
): Promise<void> {
  const text = await readFile(path, "utf8");
  await writeFile(`${path}.new`, text.replace(from, to));
  await rename(`${path}.new`, path);
}

/** Replaces `from` by `to` (of the same length) inside `path`, then restores its times. */
export async function editKeepingStat(
  path: string,
  from: string,
  to: string,
): Promise<void> {
  const before = await stat(path);
  const text = await readFile(path, "utf8");
  const edited = text.replace(from, to);
  expect(edited.length).toBe(text.length);
  await writeFile(path, edited);
  await utimes(path, before.atime, before.mtime);
}
