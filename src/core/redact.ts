// Printable forms of addresses and command output: no credentials, no control characters.

/** A URL without user, password, query or fragment; unparsable input is cut at `@`/`?`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    parsed.hash = "";
    return parsed.href;
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return url
      .replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1")
      .replace(/[?#].*$/, "");
  }
}
