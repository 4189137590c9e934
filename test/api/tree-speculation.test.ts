// A rebuild's scan on walks taken as holding: what it registers and emits leaves only once every
// walk it used is confirmed, in its order; a refuted walk drops all of it.

import { describe, expect, it } from "vitest";
import { openBuildWrites } from "../../src/api/build-writes.js";
import { speculateTrees } from "../../src/api/tree-speculation.js";
import type { EnvpackEvent } from "../../src/core/index.js";
import type { PackageTreeWalk } from "../../src/scan/light.js";

const walk = (lines: string): PackageTreeWalk =>
  ({ lines }) as unknown as PackageTreeWalk;

/** A speculation over verdicts given by `holds`, with the calls it passed on. */
function speculation(holds: (dir: string) => boolean) {
  const asked: string[] = [];
  const written: string[] = [];
  const events: EnvpackEvent[] = [];
  const writes = openBuildWrites(undefined);
  const spec = speculateTrees(
    (dir) => {
      asked.push(dir);
      return holds(dir);
    },
    writes,
    (e) => events.push(e),
  );
  const write = (what: string) => async () => void written.push(what);
  return { spec, asked, written, events, writes, write };
}

const debug = (message: string): EnvpackEvent => ({ type: "debug", message });

describe("speculateTrees", () => {
  it("passes held writes and events on once every walk used holds, then checks as usual", async () => {
    const { spec, asked, written, events, writes, write } = speculation(
      (dir) => dir !== "/late",
    );
    expect(spec.isUnchanged("/a", walk("a"))).toBe(true);
    expect(spec.isUnchanged("/b", walk("b"))).toBe(true);
    spec.writes.require(write("record"));
    spec.writes.remember("scans", write("scans"));
    spec.onEvent(debug("first"));
    expect(asked).toEqual([]);
    expect(events).toEqual([]);
    expect(spec.confirm()).toBe(true);
    expect(asked).toEqual(["/a", "/b"]);
    expect(events).toEqual([debug("first")]);
    spec.onEvent(debug("second"));
    expect(events).toEqual([debug("first"), debug("second")]);
    expect(spec.isUnchanged("/late", walk("late"))).toBe(false);
    expect(await writes.settle()).toBeUndefined();
    expect(written).toEqual(["record", "scans"]);
  });

  it("drops what the scan registered and emitted when a walk used no longer holds", async () => {
    const { spec, written, events, writes, write } = speculation(
      (dir) => dir !== "/b",
    );
    spec.isUnchanged("/a", walk("a"));
    spec.isUnchanged("/b", walk("b"));
    spec.writes.require(write("record"));
    spec.onEvent(debug("first"));
    expect(spec.confirm()).toBe(false);
    expect(spec.confirm()).toBe(false);
    spec.writes.remember("scans", write("scans"));
    spec.onEvent(debug("later"));
    expect(await writes.settle()).toBeUndefined();
    expect(written).toEqual([]);
    expect(events).toEqual([]);
  });
});
