// Chooses a registry backend by URL: a directory, or an OCI distribution registry.

import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError, redactUrl } from "../core/light.js";
import type { RegistryCredentials } from "./credentials.js";
import { LocalRegistry } from "./local-registry.js";
import { OciRegistry } from "./oci-registry.js";
import type { Registry } from "./registry.js";

/** Options of {@link openRegistry}. */
export interface OpenRegistryOptions {
  credentials?: RegistryCredentials | undefined;
  /** Allow plain HTTP to an `oci://` registry (default: HTTPS only). */
  insecure?: boolean | undefined;
  /** Extra attempts after a 5xx, 429 or failed connection (default 3). */
  retries?: number | undefined;
  /** First backoff in ms, doubled each attempt (default 250). */
  retryBaseMs?: number | undefined;
  /**
   * An `oci://` request fails (and is retried) when no byte moves either way for this long
   * (default 60000): a registry that goes silent does not hang the build.
   */
  idleTimeoutMs?: number | undefined;
  /**
   * An `oci://` operation (a request and its retries, a whole pull or upload) gives up with
   * ENVPACK_REMOTE_UNREACHABLE once no byte has moved for this long (default 120000): a
   * registry that never answers fails a build in bounded time, whatever the retries.
   */
  deadlineMs?: number | undefined;
  /** Resolves relative directory paths (default: the process's cwd). */
  cwd?: string | undefined;
}

/** Repository names as the distribution spec allows them. */
const REPOSITORY =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/**
 * Opens a registry: `oci://host[:port]/repository` (HTTPS; plain HTTP with `insecure`), or a
 * directory given as `file:///abs/path` or a plain path.
 * @throws UsageError ENVPACK_USAGE_BAD_REGISTRY_URL for anything else
 */
export function openRegistry(
  url: string,
  options: OpenRegistryOptions = {},
): Registry {
  const bad = (why: string) =>
    new UsageError(
      "ENVPACK_USAGE_BAD_REGISTRY_URL",
      `not a registry URL: ${redactUrl(url)} (${why})`,
      {
        hint: "Use oci://HOST[:PORT]/REPOSITORY, file:///ABSOLUTE/DIR or a directory path.",
      },
    );
  if (url.startsWith("oci://")) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      throw bad("unparsable");
    }
    if (parsed.username || parsed.password)
      throw bad(
        "credentials go in ENVPACK_REGISTRY_USER/_PASSWORD, not the URL",
      );
    // Not decoded: a repository name has no character that needs escaping (and "%zz" would throw).
    const repository = parsed.pathname.replace(/^\/+|\/+$/g, "");
    if (!parsed.host || !REPOSITORY.test(repository))
      throw bad("it needs a host and a lowercase repository name");
    return new OciRegistry({
      origin: `${options.insecure ? "http" : "https"}://${parsed.host}`,
      displayUrl: `oci://${parsed.host}/${repository}`,
      repository,
      credentials: options.credentials,
      retries: options.retries ?? 3,
      retryBaseMs: options.retryBaseMs ?? 250,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      deadlineMs: options.deadlineMs ?? 120_000,
    });
  }
  if (url.startsWith("file:")) {
    try {
      return new LocalRegistry(fileURLToPath(url));
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      throw bad("file: URLs must be absolute");
    }
  }
  if (url === "" || /^[a-z][a-z0-9+.-]*:\/\//i.test(url))
    throw bad("unknown scheme");
  return new LocalRegistry(
    isAbsolute(url) ? url : resolve(options.cwd ?? process.cwd(), url),
  );
}
