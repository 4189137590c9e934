// The bundle key: input digest plus exactly the build options that change bytes.

import { describe, expect, it } from "vitest";
import { digestOf } from "../../src/core/index.js";
import { bundleKey } from "../../src/api/bundle-key.js";

describe("bundleKey", () => {
  const input = digestOf("an input");

  it("differs from the input digest and for every byte-changing option", () => {
    const plain = bundleKey(input);
    const keys = [
      plain,
      bundleKey(input, { level: 19 }),
      bundleKey(input, { prune: true }),
      bundleKey(input, { engine: "conda-pack" }),
      bundleKey(digestOf("another input")),
    ];
    expect(plain).not.toBe(input);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("spells defaults and absent options alike", () => {
    expect(
      bundleKey(input, { level: 3, prune: false, engine: "builtin" }),
    ).toBe(bundleKey(input));
  });
});
