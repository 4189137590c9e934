// Resource specs given by users: what is accepted and what fails at the call.

import { describe, expect, it } from "vitest";
import { parseResourceSpec } from "../../src/core/index.js";

describe("parseResourceSpec", () => {
  it("accepts Parsl's keys", () => {
    expect(
      parseResourceSpec({ cores: 2, memory: 512.5, disk: 100, gpus: 0 }, "x"),
    ).toEqual({
      cores: 2,
      memory: 512.5,
      disk: 100,
      gpus: 0,
    });
    expect(parseResourceSpec(undefined, "x")).toEqual({});
  });

  it.each([
    [{ cpus: 2 }, 'unknown resource "cpus"'],
    [{ cores: 1.5 }, "cores must be an integer"],
    [{ cores: 0 }, "cores must be an integer ≥ 1"],
    [{ memory: -1 }, "memory must be a positive number"],
    [{ memory: "4G" }, "memory must be a positive number"],
    [[1], "resources must be an object"],
  ])("refuses %j", (spec, message) => {
    expect(() => parseResourceSpec(spec, "app f")).toThrow(
      expect.objectContaining({
        code: "ENVPACK_USAGE_BAD_RESOURCES",
        message: expect.stringContaining(message),
      }),
    );
  });
});
