// credentialsFrom: which credentials a registry host gets from the environment and a parsed
// Docker config (pure logic, no files).

import { describe, expect, it } from "vitest";
import { credentialsFrom } from "../../src/registry/index.js";

const auth = (text: string) => Buffer.from(text).toString("base64");

describe("credentialsFrom", () => {
  it("finds a Docker config entry keyed by a URL with a path, as Docker does", () => {
    const dockerConfig = {
      auths: {
        "https://reg.example:5000/v1/": { auth: auth("carol:pw") },
        "http://other.example/": { auth: auth("dave:pw2") },
      },
    };
    expect(
      credentialsFrom({ env: {}, dockerConfig, host: "reg.example:5000" }),
    ).toEqual({ username: "carol", password: "pw" });
    expect(
      credentialsFrom({ env: {}, dockerConfig, host: "other.example" }),
    ).toEqual({ username: "dave", password: "pw2" });
    expect(
      credentialsFrom({ env: {}, dockerConfig, host: "reg.example" }),
    ).toBeUndefined();
  });

  it("takes the token over a user, and ignores what it cannot read", () => {
    expect(
      credentialsFrom({
        env: {
          ENVPACK_REGISTRY_TOKEN: "t",
          ENVPACK_REGISTRY_USER: "u",
          ENVPACK_REGISTRY_PASSWORD: "p",
        },
        host: "h",
      }),
    ).toEqual({ token: "t" });
    for (const dockerConfig of [
      null,
      "text",
      { auths: null },
      { auths: { h: "x" } },
      { auths: { h: { auth: auth("no-colon") } } },
    ])
      expect(
        credentialsFrom({ env: {}, dockerConfig, host: "h" }),
      ).toBeUndefined();
    expect(
      credentialsFrom({
        env: {},
        dockerConfig: {
          auths: {
            h: { auth: auth("no-colon"), username: "u", password: "p" },
          },
        },
        host: "h",
      }),
    ).toEqual({ username: "u", password: "p" });
  });
});
