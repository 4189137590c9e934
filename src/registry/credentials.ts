// Registry credentials from the environment or a Docker config file (already parsed by the caller).

/** What a registry is asked with: a user and password (basic, or exchanged for a token), or a token. */
export type RegistryCredentials =
  { username: string; password: string } | { token: string };

/**
 * Picks credentials for `host` (`name[:port]`): `ENVPACK_REGISTRY_TOKEN`, else
 * `ENVPACK_REGISTRY_USER` + `ENVPACK_REGISTRY_PASSWORD`, else the Docker config's
 * `auths[host]` (`auth` = base64 `user:password`, or `username`/`password`; an
 * `identitytoken` — an OAuth refresh token — is not used).
 * Pure: the caller reads the environment and the file.
 */
export function credentialsFrom(input: {
  env: Record<string, string | undefined>;
  dockerConfig?: unknown;
  host: string;
}): RegistryCredentials | undefined {
  const { env } = input;
  if (env["ENVPACK_REGISTRY_TOKEN"])
    return { token: env["ENVPACK_REGISTRY_TOKEN"] };
  if (
    env["ENVPACK_REGISTRY_USER"] !== undefined &&
    env["ENVPACK_REGISTRY_USER"] !== ""
  )
    return {
      username: env["ENVPACK_REGISTRY_USER"],
      password: env["ENVPACK_REGISTRY_PASSWORD"] ?? "",
    };
  const auths = (input.dockerConfig as { auths?: unknown } | undefined)?.auths;
  if (auths === null || typeof auths !== "object") return undefined;
  const table = auths as Record<string, unknown>;
  // Docker keys entries by host, sometimes written as a URL with a path (`https://host/v1/`);
  // it compares hosts, and so does this.
  const entry =
    table[input.host] ??
    Object.entries(table).find(([key]) => hostOf(key) === input.host)?.[1];
  if (entry === null || typeof entry !== "object") return undefined;
  const fields = entry as Record<string, unknown>;
  if (typeof fields["auth"] === "string" && fields["auth"]) {
    const decoded = Buffer.from(fields["auth"], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0)
      return {
        username: decoded.slice(0, colon),
        password: decoded.slice(colon + 1),
      };
  }
  if (
    typeof fields["username"] === "string" &&
    typeof fields["password"] === "string"
  )
    return { username: fields["username"], password: fields["password"] };
  return undefined;
}

/** `https://host:5000/v1/` → `host:5000`, as Docker reads its config's keys. */
function hostOf(key: string): string {
  return key.replace(/^https?:\/\//, "").split("/")[0] ?? "";
}
