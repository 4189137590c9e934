// The Node runtime of this host, which a default Node bundle carries: version, platform and, on
// Linux, the C library Node was built against.

import { closeSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import { isNotFound, type NodeRuntime } from "../../core/light.js";

/** The node runtime of this host, which a default Node bundle carries. */
export function hostRuntime(): NodeRuntime {
  const platform = `${process.platform}-${process.arch}`;
  if (process.platform !== "linux")
    return { name: "node", version: process.versions.node, platform };
  return {
    name: "node",
    version: process.versions.node,
    platform,
    libc: hostLibc(),
  };
}

let libc: "glibc" | "musl" | undefined;

/**
 * glibc or musl: named by the program interpreter of Node's own executable (a read of its first
 * kilobytes), else by Node's diagnostic report (its `glibcVersionRuntime` is there when Node was
 * built against glibc; the report takes several milliseconds to make, so it is the fallback).
 */
function hostLibc(): "glibc" | "musl" {
  libc ??= libcOfInterpreter(process.execPath) ?? libcOfReport();
  return libc;
}

function libcOfReport(): "glibc" | "musl" {
  const header = (
    process.report?.getReport() as
      { header?: { glibcVersionRuntime?: string } } | undefined
  )?.header;
  return header?.glibcVersionRuntime ? "glibc" : "musl";
}

/** Bytes read from the start of the executable: its ELF and program headers, and usually PT_INTERP's path. */
const HEAD_BYTES = 4096;
const PT_INTERP = 3;

/**
 * The C library that the ELF program interpreter (PT_INTERP) of `file` belongs to: `ld-linux*` and
 * `ld64.so*` are glibc's dynamic loaders, `ld-musl-*` musl's. Null when `file` is missing, not
 * ELF, has no interpreter (a static build) or names another.
 */
export function libcOfInterpreter(file: string): "glibc" | "musl" | null {
  const interpreter = elfInterpreter(file);
  if (interpreter === null) return null;
  const name = basename(interpreter);
  if (name.startsWith("ld-musl-")) return "musl";
  if (name.startsWith("ld-linux") || name.startsWith("ld64.so")) return "glibc";
  return null;
}

/** The PT_INTERP path of an ELF file, or null. */
function elfInterpreter(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (error) {
    // An executable this user may run but not read: the report answers.
    const code = (error as NodeJS.ErrnoException).code;
    if (isNotFound(error) || code === "EACCES" || code === "EPERM") return null;
    throw error;
  }
  try {
    const read = (length: number, position: number): Buffer => {
      const buffer = Buffer.alloc(length);
      return buffer.subarray(0, readSync(fd, buffer, 0, length, position));
    };
    const head = read(HEAD_BYTES, 0);
    // \x7fELF, then the class (1: 32-bit, 2: 64-bit) and the byte order (1: little-endian).
    if (head.length < 52 || head.readUInt32BE(0) !== 0x7f454c46) return null;
    const is64 = head[4] === 2;
    const little = head[5] === 1;
    if (head[4] !== 1 && !is64) return null;
    if (head[5] !== 1 && head[5] !== 2) return null;
    const view = new DataView(head.buffer, head.byteOffset, head.length);
    const u16 = (at: number) => view.getUint16(at, little);
    const u32 = (at: number) => view.getUint32(at, little);
    const word = (at: number) =>
      is64 ? Number(view.getBigUint64(at, little)) : u32(at);
    if (head.length < (is64 ? 64 : 52)) return null;
    const phoff = word(is64 ? 32 : 28);
    const phentsize = u16(is64 ? 54 : 42);
    const phnum = u16(is64 ? 56 : 44);
    for (let i = 0; i < phnum; i++) {
      const at = phoff + i * phentsize;
      if (at + phentsize > head.length) return null;
      if (u32(at) !== PT_INTERP) continue;
      const offset = word(at + (is64 ? 8 : 4));
      const size = word(at + (is64 ? 32 : 16));
      if (size > HEAD_BYTES) return null;
      const bytes =
        offset + size <= head.length
          ? head.subarray(offset, offset + size)
          : read(size, offset);
      const end = bytes.indexOf(0);
      return bytes.subarray(0, end < 0 ? bytes.length : end).toString("utf8");
    }
    return null;
  } finally {
    closeSync(fd);
  }
}
