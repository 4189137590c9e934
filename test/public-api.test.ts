// The library's public surface: the names exported from the package entry.

import { describe, expect, it } from "vitest";
import * as envpack from "../src/index.js";

describe("public API", () => {
  it("exports exactly the documented names", () => {
    expect(Object.keys(envpack).sort()).toMatchSnapshot();
  });
});
