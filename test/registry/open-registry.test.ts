// openRegistry's reading of URLs (no network: opening sends nothing).

import { expect, it } from "vitest";
import { openRegistry } from "../../src/registry/index.js";

it("takes a trailing slash, and refuses percent escapes with a usage error", () => {
  expect(openRegistry("oci://reg.example:5000/team/app/").displayUrl).toBe(
    "oci://reg.example:5000/team/app",
  );
  for (const url of ["oci://reg.example/%zz", "oci://reg.example/a%2Fb"])
    expect(() => openRegistry(url)).toThrow(
      expect.objectContaining({ code: "ENVPACK_USAGE_BAD_REGISTRY_URL" }),
    );
});
