// sanitizeText and redactUrl (src/core/redact.ts): what envpack echoes from outside carries no
// terminal control and no credentials.

import { describe, expect, it } from "vitest";
import { redactUrl, sanitizeText } from "../../src/core/index.js";

describe("sanitizeText", () => {
  it("folds to one line without escapes, controls, credentials or queries", () => {
    const text =
      "\u001b[31merror\u001b[0m:\tfetch https://bob:pw@reg.example/v2/x?sig=SECRET failed\r\n" +
      "\u001b]0;title\u0007Authorization: Basic Ym9iOnB3c2VjcmV0\u0000 and Bearer abcdefgh12345678\u009b2J";
    const clean = sanitizeText(text);
    expect(clean).toBe(
      "error: fetch https://reg.example/v2/x failed Authorization: [redacted] and Bearer [redacted]",
    );
    expect(clean).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it("keeps lines in multiline mode, with a redrawn line's last state and the last lines", () => {
    const text =
      "one\r\ntwo\nprogress 10%\rprogress 100%\r\nthree\u0007\nfour\n";
    expect(sanitizeText(text, { multiline: true })).toBe(
      "one\ntwo\nprogress 100%\nthree\nfour",
    );
    expect(sanitizeText(text, { multiline: true, maxLines: 2 })).toBe(
      "three\nfour",
    );
    expect(sanitizeText("abcdef", { maxChars: 3 })).toBe("def");
  });

  it("leaves prose about auth alone", () => {
    expect(sanitizeText("Basic auth is refused")).toBe("Basic auth is refused");
  });
});

describe("redactUrl", () => {
  it("drops user, password, query and fragment, parsable or not", () => {
    expect(redactUrl("https://u:p@h.example:5000/a?b=c#d")).toBe(
      "https://h.example:5000/a",
    );
    expect(redactUrl("oci://u:p@[bad/x?y")).toBe("oci://[bad/x");
  });
});
