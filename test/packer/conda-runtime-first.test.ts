// planCondaBundle hands over the runtime layer (python's package) as soon as its entries are
// final, before the rest of the prefix is decided, so a build packs it meanwhile; when another
// package lists a file of python's, the entries are final only with the plan. A draft of them
// comes before any other record is read, and the plan says whether it held.

import { describe, expect, inject, it } from "vitest";
import {
  planCondaBundle,
  type CondaBundleEntry,
} from "../../packer/conda/index.js";
import { copyWithPythonFileShared } from "../helpers/conda-copy.js";

function fixture() {
  const conda = inject("fixtures").conda;
  if (!conda) throw new Error("the Conda fixture was not built");
  return conda;
}

const runtimeOf = (entries: CondaBundleEntry[]) =>
  entries.filter((e) => e.layer === "runtime");

/**
 * Plans `prefix` with an abort in `onRuntime`: the runtime entries given, and whether the plan
 * went on to the end (it stops at its next check when the rest was still to decide).
 */
async function abortedAtRuntime(prefix: string) {
  const given: CondaBundleEntry[][] = [];
  const stop = new AbortController();
  const outcome = await planCondaBundle({
    prefix,
    signal: stop.signal,
    onRuntime: (entries) => {
      given.push(entries);
      stop.abort(new Error("stopped at the runtime layer"));
    },
  }).then(
    () => "planned",
    (error: unknown) => (error as Error).message,
  );
  return { given, outcome };
}

/**
 * Plans `prefix` with a runtime draft: the calls in order, and whether the plan went on to the
 * end when stopped at the draft (`stopAtDraft`).
 */
async function drafted(prefix: string, stopAtDraft = false) {
  const calls: { draft?: CondaBundleEntry[]; runtime?: CondaBundleEntry[] }[] =
    [];
  const stop = new AbortController();
  const outcome = await planCondaBundle({
    prefix,
    signal: stop.signal,
    onRuntimeDraft: (entries) => {
      calls.push({ draft: entries });
      if (stopAtDraft) stop.abort(new Error("stopped at the draft"));
    },
    onRuntime: (entries) => calls.push({ runtime: entries }),
  }).then(
    (plan) => plan,
    (error: unknown) => (error as Error).message,
  );
  return { calls, outcome };
}

/**
 * {@link drafted} run to its end: its entries are the plan's made without callbacks, and it
 * called twice (the draft, then the runtime layer), which are returned with that plan.
 */
async function draftedToTheEnd(prefix: string) {
  const { calls, outcome } = await drafted(prefix);
  const plan = await planCondaBundle({ prefix });
  expect(typeof outcome === "string" ? outcome : outcome.entries).toEqual(
    plan.entries,
  );
  expect(calls).toHaveLength(2);
  const [first, second] = calls;
  return { first, second, plan };
}

describe("planCondaBundle's runtime layer", () => {
  it("is handed over before the rest of the prefix is planned, as the plan lists it", async () => {
    const { prefix } = fixture();
    const { given, outcome } = await abortedAtRuntime(prefix);
    expect(outcome).toBe("stopped at the runtime layer");
    const plan = await planCondaBundle({ prefix });
    expect(given).toEqual([runtimeOf(plan.entries)]);
    expect(given[0]?.some((e) => e.path === "bin/python3.11")).toBe(true);
  });

  it("is handed over with the plan when another package lists a file of python's", async () => {
    const prefix = await copyWithPythonFileShared("runtime-shared");

    const { given, outcome } = await abortedAtRuntime(prefix);
    expect(outcome).toBe("planned");
    const given2: CondaBundleEntry[][] = [];
    const plan = await planCondaBundle({
      prefix,
      onRuntime: (entries) => given2.push(entries),
    });
    expect(given).toEqual(given2);
    expect(given2).toEqual([runtimeOf(plan.entries)]);
    expect(given2[0]?.some((e) => e.path === "bin/python3.11")).toBe(true);
  });

  it("is drafted before the rest of the prefix is read, and the plan gives the draft back when it holds", async () => {
    const { prefix } = fixture();
    const stopped = await drafted(prefix, true);
    expect(stopped.outcome).toBe("stopped at the draft");
    expect(stopped.calls.map((c) => Object.keys(c))).toEqual([["draft"]]);

    const { first, second, plan } = await draftedToTheEnd(prefix);
    expect(first?.draft).toEqual(runtimeOf(plan.entries));
    expect(second?.runtime).toBe(first?.draft);
  });

  it("is drafted, then handed over with the plan when another package lists a file of python's", async () => {
    const prefix = await copyWithPythonFileShared("runtime-shared");
    const { first, second, plan } = await draftedToTheEnd(prefix);
    expect(first?.draft).toBeDefined();
    expect(second?.runtime).not.toBe(first?.draft);
    expect(second?.runtime).toEqual(runtimeOf(plan.entries));
  });
});
