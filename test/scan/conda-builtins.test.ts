// The interpreter's built-in modules are asked once per interpreter and remembered on disk: another
// process reads the answer instead of starting Python; a replaced interpreter or libpython, or a
// damaged answer, is asked again.

import {
  chmod,
  mkdir,
  readFile,
  readdir,
  rename,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp-dir.js";

const MODULE = pathToFileURL(
  join(
    import.meta.dirname,
    "..",
    "..",
    "dist",
    "src",
    "scan",
    "conda",
    "builtin-modules.js",
  ),
).href;

/** A prefix whose `bin/python3.11` is a script answering `names` and counting its runs in `log`. */
async function fakePrefix(names: string[]) {
  const prefix = await tempDir("envpack-builtins-");
  await mkdir(join(prefix, "bin"));
  await mkdir(join(prefix, "lib"));
  const log = join(prefix, "runs.log");
  await writeFile(log, "");
  const setInterpreter = async (answer: string[]) => {
    const script = join(prefix, "bin", "python3.11.new");
    await writeFile(
      script,
      `#!/bin/sh\necho run >> '${log}'\nprintf '%s\\n' ${answer.join(" ")}\n`,
    );
    await chmod(script, 0o755);
    await rename(script, join(prefix, "bin", "python3.11"));
  };
  await setInterpreter(names);
  const memoDir = join(await tempDir(), "cache", "conda", "builtins");
  /** The answer as a new process gets it. */
  const ask = async (): Promise<string[]> => {
    const { stdout } = await execa(process.execPath, [
      "--input-type=module",
      "-e",
      `const { builtinModules } = await import(${JSON.stringify(MODULE)});
const names = await builtinModules(${JSON.stringify(prefix)}, "3.11", { memoDir: ${JSON.stringify(memoDir)} });
console.log(JSON.stringify([...names].sort()));`,
    ]);
    return JSON.parse(stdout) as string[];
  };
  const runs = async () =>
    (await readFile(log, "utf8")).split("\n").filter((l) => l !== "").length;
  return { prefix, memoDir, ask, runs, setInterpreter };
}

describe("the interpreter's built-in modules", () => {
  it("are asked once and read from the cache by the next process", async () => {
    const fake = await fakePrefix(["builtins", "sys"]);
    expect(await fake.ask()).toEqual(["builtins", "sys"]);
    expect(await fake.ask()).toEqual(["builtins", "sys"]);
    expect(await fake.runs()).toBe(1);
    expect(await readdir(fake.memoDir)).toHaveLength(1);
  });

  it("are asked again when the interpreter is replaced", async () => {
    const fake = await fakePrefix(["builtins", "sys"]);
    await fake.ask();
    await fake.setInterpreter(["builtins", "posix", "sys"]);
    expect(await fake.ask()).toEqual(["builtins", "posix", "sys"]);
    expect(await fake.runs()).toBe(2);
  });

  it("are asked again when libpython changes", async () => {
    const fake = await fakePrefix(["builtins", "sys"]);
    const lib = join(fake.prefix, "lib", "libpython3.11.so.1.0");
    await writeFile(lib, "one");
    await fake.ask();
    await writeFile(lib, "two, longer");
    await fake.ask();
    expect(await fake.runs()).toBe(2);
  });

  it("are asked again when the remembered answer is cut short", async () => {
    const fake = await fakePrefix(["builtins", "sys"]);
    await fake.ask();
    const [file] = await readdir(fake.memoDir);
    const path = join(fake.memoDir, file as string);
    const text = await readFile(path, "utf8");
    await writeFile(path, text.slice(0, text.length - 3));
    expect(await fake.ask()).toEqual(["builtins", "sys"]);
    expect(await fake.runs()).toBe(2);
  });

  it("are read from libpython's PyInit_ symbols when the interpreter fails", async () => {
    const fake = await fakePrefix([]);
    await writeFile(
      join(fake.prefix, "bin", "python3.11"),
      "#!/bin/sh\nexit 3\n",
    );
    await writeFile(
      join(fake.prefix, "lib", "libpython3.11.so.1.0"),
      "\0PyInit_posix\0xPyInit__io\0PyInit_\0",
    );
    expect(await fake.ask()).toEqual(["_io", "posix"]);
  });

  it("stop asking when the signal aborts, with its reason", async () => {
    const fake = await fakePrefix([]);
    // An interpreter that would answer only after the test's timeout.
    await writeFile(
      join(fake.prefix, "bin", "python3.11"),
      "#!/bin/sh\nexec sleep 600\n",
    );
    const { builtinModules } = (await import(MODULE)) as {
      builtinModules: (
        prefix: string,
        majorMinor: string,
        options: { signal?: AbortSignal },
      ) => Promise<ReadonlySet<string>>;
    };
    const controller = new AbortController();
    const asked = builtinModules(fake.prefix, "3.11", {
      signal: controller.signal,
    });
    const reason = new Error("stopped by the test");
    controller.abort(reason);
    await expect(asked).rejects.toBe(reason);
  });
});
