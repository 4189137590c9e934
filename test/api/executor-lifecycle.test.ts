// The Executor's bookkeeping around tasks, with the real local backend: tasks queued while
// autolabel measures get the label once it is chosen; cancellation reaches calls still being
// prepared and calls made after an abort; every call ends in a value or an error.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { Executor, type EnvpackEvent } from "../../src/index.js";
import { tempDir } from "../helpers/temp-dir.js";

const tasksTs = () => {
  const app = inject("fixtures").apps["exec-tasks"];
  if (app === undefined)
    throw new Error("the exec-tasks fixture app was not installed");
  return join(app, "src", "tasks.ts");
};

/** A JS module whose task reports when it ran: [start ms, end ms]. */
async function spanModule(): Promise<string> {
  const file = join(await tempDir(), "span.mjs");
  await writeFile(
    file,
    "export async function span(ms) { const start = Date.now(); await new Promise((r) => setTimeout(r, ms)); return [start, Date.now()]; }\n",
  );
  return file;
}

/** The most intervals open at one instant. */
function maxOverlap(spans: Array<[number, number]>): number {
  const points = spans.flatMap(([s, e]): Array<[number, number]> => [
    [s, 1],
    [e, -1],
  ]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, d] of points) most = Math.max(most, (open += d));
  return most;
}

describe("Executor lifecycle (local backend)", () => {
  it("autolabel: tasks queued while their category was measuring run with the label once it is chosen", async () => {
    const events: EnvpackEvent[] = [];
    const ex = new Executor({
      workers: [{ id: "w", cores: 4, memory: 4000 }],
      workDir: await tempDir(),
      autolabel: true,
      autolabelWindow: 1,
      onEvent: (e) => events.push(e),
    });
    try {
      const span = ex.app<[number], [number, number]>(
        await spanModule(),
        "span",
      );
      // All nine are queued before the first ends: they all start out waiting for a whole worker.
      const spans = await Promise.all(
        Array.from({ length: 9 }, () => span(1500)),
      );
      const chosen = events.filter((e) => e.type === "label:chosen");
      // Chosen after the first sample; a later runtime may peak a little higher and move the
      // max-seen memory label up by a MB or so, never its cores.
      expect(chosen[0]).toMatchObject({ samples: 1, label: { cores: 1 } });
      for (const e of chosen) expect(e).toMatchObject({ label: { cores: 1 } });
      const labels = events.flatMap((e) =>
        e.type === "task:state" && e.state === "running"
          ? [e.label?.cores]
          : [],
      );
      // The first measured on the whole worker; the other eight got the 1-core label...
      expect(labels).toEqual([4, 1, 1, 1, 1, 1, 1, 1, 1]);
      // ...so they ran four at a time, not one after another.
      expect(maxOverlap(spans.slice(1))).toBe(4);
    } finally {
      await ex.shutdown();
    }
  });

  it("autocategory: one category per app by default, one for all apps when off", async () => {
    const file = await spanModule();
    const categories = async (autocategory: boolean | undefined) => {
      const ex = new Executor({
        workers: [{ cores: 2 }],
        workDir: await tempDir(),
        autolabel: true,
        autocategory,
      });
      try {
        await ex.app(file, "span")(10);
        await ex.app(file, "span", { name: "other" })(10);
        await ex.command("true")();
        return ex
          .summary()
          .map((c) => [c.category, c.samples, c.label === null]);
      } finally {
        await ex.shutdown();
      }
    };
    expect(await categories(undefined)).toEqual([
      ["span.span", 1, false],
      ["other", 1, false],
      ["true", 1, false],
    ]);
    expect(await categories(false)).toEqual([["default", 3, false]]);
  });

  it("a cancel reaches calls still being prepared, and calls after an abort are canceled", async () => {
    const controller = new AbortController();
    const ex = new Executor({
      workers: [{ cores: 1 }],
      workDir: await tempDir(),
      signal: controller.signal,
    });
    // A TypeScript app is compiled before its first task exists.
    const call = ex.app(tasksTs(), "echo")("x");
    controller.abort();
    await expect(call).rejects.toMatchObject({
      code: "ENVPACK_TASK_CANCELED",
    });
    await expect(ex.app(tasksTs(), "echo")("y")).rejects.toMatchObject({
      code: "ENVPACK_TASK_CANCELED",
    });
    await ex.shutdown();

    const aborted = new Executor({
      workers: [{ cores: 1 }],
      workDir: await tempDir(),
      signal: AbortSignal.abort(),
    });
    await expect(aborted.app(tasksTs(), "echo")("z")).rejects.toMatchObject({
      code: "ENVPACK_TASK_CANCELED",
    });
    await aborted.shutdown();
  });

  it("a drain waits for calls still being prepared, and every call ends", async () => {
    const ex = new Executor({
      workers: [{ cores: 2 }],
      workDir: await tempDir(),
    });
    const echo = ex.app<[number], number>(tasksTs(), "echo", {
      resources: { cores: 1 },
    });
    const fail = ex.app<[string], never>(tasksTs(), "fail", {
      resources: { cores: 1 },
    });
    const calls = Array.from({ length: 10 }, (_, i) =>
      i % 3 === 0 ? fail(`no ${i}`) : echo(i),
    );
    // Nothing is queued yet (the module still compiles): shutdown must wait for these.
    const drained = ex.shutdown();
    const settled = await Promise.allSettled(calls);
    await drained;
    expect(
      settled.map((s) =>
        s.status === "fulfilled"
          ? s.value
          : (s.reason as { code: string }).code,
      ),
    ).toEqual([
      "ENVPACK_TASK_FAILED",
      1,
      2,
      "ENVPACK_TASK_FAILED",
      4,
      5,
      "ENVPACK_TASK_FAILED",
      7,
      8,
      "ENVPACK_TASK_FAILED",
    ]);
  });

  it("names a missing module when the app is made, and a compile error's place at the call", async () => {
    const dir = await tempDir();
    const ex = new Executor({ workers: [{ cores: 1 }], workDir: dir });
    try {
      expect(() => ex.app(join(dir, "nope.ts"), "f")).toThrow(
        expect.objectContaining({
          code: "ENVPACK_INPUT_ENTRY_NOT_FOUND",
          message: expect.stringContaining("nope.ts"),
        }),
      );
      expect(() => ex.pythonApp(join(dir, "nope.py"), "f")).toThrow(
        expect.objectContaining({ code: "ENVPACK_INPUT_ENTRY_NOT_FOUND" }),
      );
      const broken = join(dir, "broken.ts");
      await writeFile(broken, "export function f(: number) {}\n");
      await expect(ex.app(broken, "f")()).rejects.toMatchObject({
        code: "ENVPACK_USAGE_BAD_ARGUMENT",
        message: expect.stringMatching(/broken\.ts:1: /),
      });
    } finally {
      await ex.shutdown();
    }
  });

  it("passes numbers and booleans to commands as words, and refuses objects at the call", async () => {
    const ex = new Executor({
      workers: [{ cores: 1 }],
      workDir: await tempDir(),
    });
    try {
      const printf = ex.command(["printf", "%s-%s"]) as unknown as (
        ...args: unknown[]
      ) => Promise<{ stdout: string }>;
      expect((await printf(5, true)).stdout).toBe("5-true");
      await expect(printf({ a: 1 })).rejects.toMatchObject({
        code: "ENVPACK_USAGE_BAD_ARGUMENT",
      });
    } finally {
      await ex.shutdown();
    }
  });

  it("pack: an import the bundle cannot satisfy fails with the scan's findings", async () => {
    const dir = await tempDir();
    const file = join(dir, "needs.mjs");
    await writeFile(
      file,
      'import pad from "envpack-not-installed";\nexport function f() { return pad; }\n',
    );
    const ex = new Executor({
      workers: [{ cores: 1 }],
      workDir: await tempDir(),
      cacheDir: await tempDir(),
      pack: true,
    });
    try {
      const error = await ex
        .app(file, "f")()
        .then(
          () => undefined,
          (e: unknown) =>
            e as {
              code: string;
              hint?: string;
              details?: { unresolved?: Array<Record<string, unknown>> };
            },
        );
      expect(error?.code).toBe("ENVPACK_TASK_FAILED");
      expect(error?.details?.unresolved).toEqual([
        expect.objectContaining({
          specifier: "envpack-not-installed",
          line: 1,
        }),
      ]);
      expect(error?.hint).toContain("'envpack-not-installed'");
    } finally {
      await ex.shutdown();
    }
  });

  it("a drain still retries a crashed task", async () => {
    const dir = await tempDir();
    const file = join(dir, "flaky.mjs");
    // Exits under its first task (a crash), answers the second.
    await writeFile(
      file,
      'import { existsSync, writeFileSync } from "node:fs";\nexport function flaky(marker) { if (!existsSync(marker)) { writeFileSync(marker, ""); process.exit(3); } return "ok"; }\n',
    );
    const ex = new Executor({
      workers: [{ cores: 1 }],
      workDir: await tempDir(),
      maxRetries: 1,
    });
    const call = ex.app<[string], string>(file, "flaky")(join(dir, "marker"));
    await ex.shutdown();
    await expect(call).resolves.toBe("ok");
  });

  it.each([
    [
      { autolabelMode: "max-seen" },
      "ENVPACK_USAGE_BAD_CONFIG",
      "autolabelMode",
    ],
    [{ maxRetries: -1 }, "ENVPACK_USAGE_BAD_CONFIG", "maxRetries"],
    [{ autolabelWindow: 0 }, "ENVPACK_USAGE_BAD_CONFIG", "autolabelWindow"],
    [
      {
        workers: [
          { id: "a", cores: 1 },
          { id: "a", cores: 2 },
        ],
      },
      "ENVPACK_USAGE_BAD_RESOURCES",
      '"a"',
    ],
    [{ workers: [{ cores: 0 }] }, "ENVPACK_USAGE_BAD_RESOURCES", "cores"],
  ])("refuses the option %j when constructed", (options, code, names) => {
    expect(() => new Executor(options as never)).toThrow(
      expect.objectContaining({
        code,
        message: expect.stringContaining(names),
      }),
    );
  });
});
