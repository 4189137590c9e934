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

/** Options of {@link sanitizeText}. */
export interface SanitizeOptions {
  /** Keep line breaks (a stderr tail) instead of folding everything into one line (default false). */
  multiline?: boolean;
  /** Keep only the last this many lines (multiline only). */
  maxLines?: number;
  /** Keep only the last this many characters. */
  maxChars?: number;
}

// Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks) ended by BEL
// or ST, and the two-byte escapes; the C1 form of CSI (U+009B) as well.
const ESCAPES =
  /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]/g;
// C0 and C1 control characters; tab and line feed are handled by mode.
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]+/g;
const URLS = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;
// An auth header's value, and credentials after their scheme however they were echoed.
const AUTH_HEADER =
  /\b((?:proxy-)?authorization:\s*)(?:[A-Za-z]+ +)?[^\s,;"']+/gi;
const AUTH_SCHEME = /\b(Basic|Bearer) [A-Za-z0-9+/._~-]{8,}=*/g;

/**
 * Text from outside (a tool's stderr, a server's answer, a low-level error message) made safe to
 * echo in a message or a log: terminal escape sequences and control characters removed, URLs
 * without credentials, query or fragment ({@link redactUrl}), `Basic …`/`Bearer …` credentials
 * replaced by `[redacted]`, trimmed; one line unless `multiline`.
 */
export function sanitizeText(
  text: string,
  options: SanitizeOptions = {},
): string {
  let clean = text.replace(ESCAPES, "").replace(/\r+(?=\n|$)/g, "");
  // A line redrawn over itself (a progress bar) reads best by its last state.
  if (options.multiline === true) clean = clean.replace(/[^\n]*\r/g, "");
  clean = clean
    .replace(URLS, (url) => redactUrl(url))
    .replace(AUTH_HEADER, "$1[redacted]")
    .replace(AUTH_SCHEME, "$1 [redacted]");
  if (options.multiline === true) {
    clean = clean.replace(CONTROLS, "").trim();
    if (options.maxLines !== undefined)
      clean = clean.split("\n").slice(-options.maxLines).join("\n");
  } else {
    clean = clean
      .replace(/[\t\n]/g, " ")
      .replace(CONTROLS, " ")
      .replace(/ {2,}/g, " ")
      .trim();
  }
  return options.maxChars !== undefined && clean.length > options.maxChars
    ? clean.slice(-options.maxChars)
    : clean;
}
