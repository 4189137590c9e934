// autolabel's label choice from measured peaks, as pure logic.

import { describe, expect, it } from "vitest";
import { Categories, RELABEL_EVERY } from "../../src/exec/index.js";
import type { Resources, TaskUsage } from "../../src/core/index.js";

const worker: Resources = { cores: 4, memory: 8000, disk: 10_000, gpus: 0 };
const usage = (peakMemory: number, cores = 1, disk = 0): TaskUsage => ({
  peakMemory,
  cores,
  disk,
  wallMs: 100,
  cpuMs: 100 * cores,
});

describe("Categories", () => {
  it("measures on whole workers for the window, then labels from the largest peak", () => {
    const categories = new Categories({ window: 3, mode: "max" });
    expect(categories.labelFor("a")).toBeNull();
    expect(categories.record("a", usage(100), worker, false)).toBeUndefined();
    expect(
      categories.record("a", usage(300, 1.6), worker, false),
    ).toBeUndefined();
    const chosen = categories.record("a", usage(200), worker, false);
    // Nothing was written: no disk key (the worker share applies), never a 1 MB cap.
    expect(chosen?.label).toEqual({ cores: 2, memory: 330 });
    expect(categories.labelFor("a")).toEqual({ cores: 2, memory: 330 });
    expect(categories.labelFor("b")).toBeNull();
    expect(categories.summary().map((s) => s.category)).toEqual(["a", "b"]);
  });

  it("in throughput mode takes the label that fits the most successful tasks per worker", () => {
    const categories = new Categories({ window: 10, mode: "throughput" });
    // Nine tasks near 500 MB, one outlier at 4000 MB: 550 MB fits 9/10 and 14 per worker.
    for (let i = 0; i < 9; i++)
      categories.record("a", usage(500), worker, false);
    const chosen = categories.record("a", usage(4000), worker, false);
    expect(chosen?.label?.memory).toBe(550);
    const max = new Categories({ window: 10, mode: "max" });
    for (let i = 0; i < 9; i++) max.record("a", usage(500), worker, false);
    expect(max.record("a", usage(4000), worker, false)?.label?.memory).toBe(
      4400,
    );
  });

  it("keeps up with a long run: a new peak relabels at once in max mode, in bounded memory", () => {
    const categories = new Categories({ window: 1, mode: "max" });
    // More samples than a spread into Math.max survives (~120k arguments).
    for (let i = 0; i < 300_000; i++)
      categories.record("a", usage(100 + (i % 50)), worker, false);
    expect(categories.labelFor("a")).toEqual({ cores: 1, memory: 164 });
    const chosen = categories.record("a", usage(1000), worker, true);
    expect(chosen).toMatchObject({
      samples: 300_001,
      label: { cores: 1, memory: 1100 },
      peaks: { memory: 1000, cores: 1, disk: 0 },
      overLabel: 1,
    });
  });

  it("in throughput mode chooses again every RELABEL_EVERY samples after the window", () => {
    const categories = new Categories({ window: 4, mode: "throughput" });
    for (let i = 0; i < 4; i++)
      categories.record("a", usage(1000), worker, false);
    expect(categories.labelFor("a")?.memory).toBe(1100);
    // Most tasks turn out small: the label follows, but only at the next choice.
    const changes: number[] = [];
    for (let i = 1; i <= RELABEL_EVERY; i++)
      if (categories.record("a", usage(100), worker, false) !== undefined)
        changes.push(i);
    expect(changes).toEqual([RELABEL_EVERY]);
    expect(categories.labelFor("a")?.memory).toBe(110);
  });

  it("never labels above what the largest worker has", () => {
    const categories = new Categories({ window: 1, mode: "max" });
    // 3900 MB + 10% headroom would be 4290 MB: no task of the category could run anywhere.
    const chosen = categories.record(
      "a",
      usage(3900, 7.5),
      { ...worker, memory: 4000 },
      false,
    );
    expect(chosen?.label).toEqual({ cores: 4, memory: 4000 });
  });
});
