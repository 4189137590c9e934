// Backends opened by name through the Executor: where each listens, and options that belong to
// another backend refused with a coded error.

import { afterEach, describe, expect, it } from "vitest";
import { Executor, isEnvpackError } from "../../src/index.js";

const open: Executor[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.shutdown()));
});

function executor(
  options: ConstructorParameters<typeof Executor>[0],
): Executor {
  const e = new Executor(options);
  open.push(e);
  return e;
}

function codeOf(make: () => unknown): string | undefined {
  try {
    make();
  } catch (error) {
    return isEnvpackError(error) ? error.code : String(error);
  }
  return undefined;
}

describe("Executor backends", () => {
  it("local: listening() resolves at once with no port", async () => {
    const e = executor({ workers: [{ cores: 1 }] });
    expect(await e.listening()).toEqual({});
  });

  it("workqueue: listening() resolves with the port it picked", async () => {
    const e = executor({ backend: "workqueue", port: 0 });
    const { host, port } = await e.listening();
    expect(host).toBe("127.0.0.1");
    expect(port).toBeGreaterThan(0);
  });

  it("refuses an unknown backend and options of another backend", () => {
    expect(codeOf(() => new Executor({ backend: "slurm" } as never))).toBe(
      "ENVPACK_USAGE_BAD_CONFIG",
    );
    expect(codeOf(() => new Executor({ port: 9123 } as never))).toBe(
      "ENVPACK_USAGE_BAD_CONFIG",
    );
    expect(
      codeOf(
        () =>
          new Executor({
            backend: "workqueue",
            port: 0,
            workers: [{ cores: 1 }],
          } as never),
      ),
    ).toBe("ENVPACK_USAGE_BAD_CONFIG");
    expect(codeOf(() => new Executor({ backend: "workqueue" } as never))).toBe(
      "ENVPACK_USAGE_BAD_CONFIG",
    );
    expect(codeOf(() => new Executor({ runtimeIdleMs: 100 } as never))).toBe(
      "ENVPACK_USAGE_BAD_CONFIG",
    );
    expect(
      codeOf(
        () => new Executor({ backend: "workqueue", port: 0, runtimeIdleMs: 0 }),
      ),
    ).toBe("ENVPACK_USAGE_BAD_CONFIG");
  });
});
