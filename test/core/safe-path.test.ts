// The pure path checks unpacking relies on (src/core/safe-path.ts), case by case.

import { describe, expect, it } from "vitest";
import {
  isLinkInside,
  isSafeRelativePath,
  normaliseRelativePath,
  resolveInside,
  resolveLinkTarget,
} from "../../src/core/index.js";

describe("isSafeRelativePath and normaliseRelativePath", () => {
  it.each([
    ["a/b", "a/b"],
    ["./a//b/", "a/b"],
    [".", "."],
    ["a/./b", "a/b"],
  ])("accepts %j as %j", (path, canonical) => {
    expect(isSafeRelativePath(path)).toBe(true);
    expect(normaliseRelativePath(path)).toBe(canonical);
  });

  it.each([
    "",
    "..",
    "../x",
    "a/../../x",
    "a/..",
    "/abs",
    "a\\b",
    "a\0b",
    "C:x",
  ])("refuses %j", (path) => {
    expect(isSafeRelativePath(path)).toBe(false);
    expect(normaliseRelativePath(path)).toBeNull();
  });
});

describe("resolveInside", () => {
  it("joins inside paths and refuses the rest, including a sibling sharing the root's prefix", () => {
    expect(resolveInside("/r/root", "a/b")).toBe("/r/root/a/b");
    expect(resolveInside("/r/root/", ".")).toBe("/r/root");
    expect(resolveInside("/r/root", "../root-other/x")).toBeNull();
    expect(resolveInside("/r/root", "/etc/passwd")).toBeNull();
  });
});

describe("isLinkInside", () => {
  it("reads the target from the link's own directory", () => {
    expect(isLinkInside("a/b/l", "../../x")).toBe(true);
    expect(isLinkInside("a/b/l", "../../../x")).toBe(false);
    expect(isLinkInside("l", "/etc")).toBe(false);
    expect(isLinkInside("l", "")).toBe(false);
  });
});

describe("resolveLinkTarget", () => {
  const links =
    (map: Record<string, string>) =>
    (path: string): string | undefined =>
      map[path];

  it("resolves plain targets from the link's directory", () => {
    expect(resolveLinkTarget("a/l", "b", links({}))).toBe("a/b");
    expect(resolveLinkTarget("a/l", "..", links({}))).toBe(".");
    expect(resolveLinkTarget("a/l", "../..", links({}))).toBeNull();
  });

  it("applies .. to the resolved parent, as the kernel does", () => {
    // s -> . makes s/.. the root's parent, though s/.. looks like the root.
    expect(resolveLinkTarget("l", "s/..", links({ s: "." }))).toBeNull();
    // d/s -> ../x/y makes d/s/.. = x: inside.
    expect(resolveLinkTarget("d/l", "s/..", links({ "d/s": "../x/y" }))).toBe(
      "x",
    );
  });

  it("follows chains and refuses absolute hops and loops", () => {
    expect(resolveLinkTarget("l", "a/f", links({ a: "b", b: "c/d" }))).toBe(
      "c/d/f",
    );
    expect(resolveLinkTarget("l", "a/f", links({ a: "/etc" }))).toBeNull();
    expect(resolveLinkTarget("l", "a", links({ a: "b", b: "a" }))).toBeNull();
  });
});
