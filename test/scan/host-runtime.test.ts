// The host's C library, read from the ELF program interpreter of Node's executable: the answer of
// Node's diagnostic report on this host, and the right one for each loader, word size and byte
// order; anything it cannot tell (static, not ELF, unknown loader, missing) is left to the report.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  hostRuntime,
  libcOfInterpreter,
} from "../../src/scan/js/host-runtime.js";
import { tempDir } from "../helpers/temp-dir.js";

const PT_LOAD = 1;
const PT_INTERP = 3;

/** A minimal ELF file: headers, program headers (the interpreter's first) and the path at `pathAt`. */
function elf(options: {
  is64: boolean;
  little: boolean;
  interpreter?: string;
  pathAt?: number;
}): Buffer {
  const { is64, little, interpreter } = options;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const headers = interpreter === undefined ? [PT_LOAD] : [PT_INTERP, PT_LOAD];
  const path = Buffer.from(`${interpreter ?? ""}\0`);
  const pathAt = options.pathAt ?? ehsize + headers.length * phentsize;
  const file = Buffer.alloc(pathAt + path.length);
  const view = new DataView(file.buffer, file.byteOffset, file.length);
  const u16 = (at: number, v: number) => view.setUint16(at, v, little);
  const u32 = (at: number, v: number) => view.setUint32(at, v, little);
  const word = (at: number, v: number) =>
    is64 ? view.setBigUint64(at, BigInt(v), little) : u32(at, v);
  file.writeUInt32BE(0x7f454c46, 0);
  file[4] = is64 ? 2 : 1;
  file[5] = little ? 1 : 2;
  file[6] = 1;
  u16(16, 3);
  word(is64 ? 32 : 28, ehsize);
  u16(is64 ? 52 : 40, ehsize);
  u16(is64 ? 54 : 42, phentsize);
  u16(is64 ? 56 : 44, headers.length);
  headers.forEach((type, i) => {
    const at = ehsize + i * phentsize;
    u32(at, type);
    if (type !== PT_INTERP) return;
    word(at + (is64 ? 8 : 4), pathAt);
    word(at + (is64 ? 32 : 16), path.length);
  });
  path.copy(file, pathAt);
  return file;
}

async function libcOf(content: Buffer | string): Promise<string | null> {
  const file = join(await tempDir(), "node");
  await writeFile(file, content);
  return libcOfInterpreter(file);
}

describe("the host's C library", () => {
  it("is what Node's diagnostic report says on this host", () => {
    const header = (
      process.report.getReport() as {
        header: { glibcVersionRuntime?: string };
      }
    ).header;
    const reported = header.glibcVersionRuntime ? "glibc" : "musl";
    if (process.platform === "linux") {
      expect(libcOfInterpreter(process.execPath)).toBe(reported);
      expect(hostRuntime().libc).toBe(reported);
    } else {
      expect(hostRuntime().libc).toBeUndefined();
    }
  });

  it.each([
    ["/lib64/ld-linux-x86-64.so.2", true, true, "glibc"],
    ["/lib/ld-linux-aarch64.so.1", true, true, "glibc"],
    ["/lib64/ld64.so.2", true, false, "glibc"],
    ["/lib/ld-linux.so.2", false, true, "glibc"],
    ["/lib/ld-linux-armhf.so.3", false, false, "glibc"],
    ["/lib/ld-musl-x86_64.so.1", true, true, "musl"],
    ["/lib/ld-musl-armhf.so.1", false, true, "musl"],
    ["/usr/libexec/ld.elf_so", true, true, null],
  ] as const)(
    "%s (64-bit: %s, little-endian: %s) is %s",
    async (interpreter, is64, little, expected) => {
      expect(await libcOf(elf({ is64, little, interpreter }))).toBe(expected);
    },
  );

  it("reads an interpreter path that lies past the first kilobytes", async () => {
    const interpreter = "/lib/ld-musl-aarch64.so.1";
    expect(
      await libcOf(
        elf({ is64: true, little: true, interpreter, pathAt: 9000 }),
      ),
    ).toBe("musl");
  });

  it("leaves a static, a non-ELF, a truncated and a missing executable to the report", async () => {
    expect(await libcOf(elf({ is64: true, little: true }))).toBeNull();
    expect(await libcOf('#!/bin/sh\nexec node "$@"\n')).toBeNull();
    const truncated = elf({
      is64: true,
      little: true,
      interpreter: "/lib64/ld-linux-x86-64.so.2",
    }).subarray(0, 70);
    expect(await libcOf(truncated)).toBeNull();
    expect(libcOfInterpreter(join(await tempDir(), "absent"))).toBeNull();
  });
});
