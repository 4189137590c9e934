// HTTP to an OCI distribution registry: authentication handshakes (basic, bearer token) and
// bounded retries with backoff, on top of node-fetch.

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BodyInit, Response } from "node-fetch";
import {
  RemoteError,
  redactUrl,
  sanitizeText,
  type OnEvent,
} from "../core/light.js";
import type { RegistryCredentials } from "./credentials.js";
import { Deadline } from "./deadline.js";
import { Watchdog } from "./watchdog.js";

/** Where a client talks to. */
export interface OciClientOptions {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  /** The registry as the user wrote it, credentials removed, for messages. */
  displayUrl: string;
  credentials?: RegistryCredentials | undefined;
  /** Extra attempts after a 5xx, 429 or a failed connection. */
  retries: number;
  /** First backoff; doubled every attempt, with jitter. */
  retryBaseMs: number;
  /** A request fails (and may be retried) when no byte moves either way for this long. */
  idleTimeoutMs: number;
  /**
   * An operation (a request with its retries, or a whole pull or upload) gives up when no byte
   * has moved for this long, however many attempts it has left.
   */
  deadlineMs: number;
}

/** One request. `body` is a factory so that a retry sends the bytes again from the start. */
export interface OciRequest {
  method: "GET" | "HEAD" | "POST" | "PUT";
  /** A path (`/v2/...`) or an absolute URL (an upload location). */
  url: string;
  headers?: Record<string, string>;
  body?: () => BodyInit;
  signal?: AbortSignal | undefined;
  /**
   * Extra attempts for this request (default: the client's). 0 when the caller repeats a whole
   * exchange itself with {@link OciClient.retrying}.
   */
  retries?: number;
  /**
   * The caller's idle timer, when it reads a long body itself and touches the timer as bytes
   * arrive (default: one of the client's, stopped when the body ends).
   */
  watchdog?: Watchdog;
  /** The operation's deadline, when the request is part of a {@link OciClient.retrying} exchange. */
  deadline?: Deadline;
  /** Receives a `warn` event (ENVPACK_WARN_REGISTRY_RETRY) before every retry. */
  onEvent?: OnEvent | undefined;
}

/** How {@link OciClient.retrying} runs an exchange. */
export interface RetryOptions {
  /** What the exchange is, for messages: `pull of sha256:…`. */
  what: string;
  signal?: AbortSignal | undefined;
  onEvent?: OnEvent | undefined;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** A registry connection: remembers the authorization it negotiated. */
export class OciClient {
  readonly #options: OciClientOptions;
  #authorization: string | undefined;

  constructor(options: OciClientOptions) {
    this.#options = options;
  }

  /**
   * Sends a request. A 401 is answered once per request with the challenge's scheme (basic, or a
   * bearer token from the challenge's realm); refused credentials are RemoteError
   * ENVPACK_REMOTE_AUTH. 5xx/429 answers and failed connections are retried with backoff; when
   * they run out, RemoteError ENVPACK_REMOTE_HTTP or ENVPACK_REMOTE_UNREACHABLE (also when no
   * byte moves for `idleTimeoutMs`, or the operation's `deadlineMs` is spent: then with
   * `details.deadlineMs`). Every retry is announced by a `warn` event. Other statuses are
   * returned for the caller to judge.
   */
  async send(request: OciRequest): Promise<Response> {
    const url = new URL(request.url, this.#options.origin).href;
    const what = `${request.method} ${new URL(url).pathname}`;
    const retries = request.retries ?? this.#options.retries;
    const deadline = request.deadline ?? this.deadline();
    const watchdog = request.watchdog ?? this.watchdog(deadline);
    let authenticated = false;
    const fetchUrl = await nodeFetch();
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      if (deadline.expired) throw this.#deadlineError(what, attempt);
      watchdog.arm();
      const waiting = deadline.guard();
      try {
        response = await fetchUrl(url, {
          method: request.method,
          headers: {
            ...request.headers,
            ...(this.#authorization === undefined
              ? {}
              : { Authorization: this.#authorization }),
          },
          body: watched(request.body?.(), watchdog),
          signal: AbortSignal.any(
            [request.signal, watchdog.signal, waiting.signal].filter(
              (s) => s !== undefined,
            ),
          ),
        });
      } catch (error) {
        waiting.stop();
        watchdog.stop();
        request.signal?.throwIfAborted();
        if (waiting.signal.aborted)
          throw this.#deadlineError(what, attempt + 1, error);
        const reason = watchdog.fired
          ? watchdog.reason.message
          : sanitizeText((error as Error).message);
        if (attempt < retries) {
          await this.#retry(what, reason, attempt, retries, deadline, request);
          continue;
        }
        const plainHttp = /wrong version number|EPROTO/.test(reason);
        throw new RemoteError(
          "ENVPACK_REMOTE_UNREACHABLE",
          `cannot reach the registry ${this.#options.displayUrl}: ${plainHttp ? "it does not speak HTTPS" : reason}`,
          {
            url: redactUrl(url),
            hint: plainHttp
              ? "A registry on plain HTTP needs --insecure (or ENVPACK_REGISTRY_INSECURE=1)."
              : "Check that the registry is running and the address and port are right.",
            cause: error,
          },
        );
      }
      // An answer: the budget is for a registry that gives none.
      waiting.stop();
      if (request.watchdog === undefined) {
        // Guards the body too, until it ends (or forever unread: the timer does not hold the process).
        const stop = () => watchdog.stop();
        response.body?.once("end", stop).once("close", stop);
      }
      if (response.status === 401 && !authenticated) {
        authenticated = true;
        await drain(response);
        await this.#authenticate(
          response.headers.get("www-authenticate"),
          url,
          request.signal,
        );
        attempt--;
        continue;
      }
      if (response.status === 401 || response.status === 403) {
        await drain(response);
        throw this.#authError(url, response.status);
      }
      if (RETRYABLE_STATUS.has(response.status)) {
        if (attempt < retries) {
          await drain(response);
          await this.#retry(
            what,
            `it answered ${response.status}`,
            attempt,
            retries,
            deadline,
            request,
          );
          continue;
        }
        throw await this.statusError(response, `${request.method} ${url}`);
      }
      return response;
    }
  }

  /**
   * Runs an exchange of several requests again from its start, with backoff, when it fails in a
   * way another attempt can mend (a dropped connection, a 5xx or 429), up to the client's
   * retries. For what cannot be resumed where it broke: an upload session the registry saw part
   * of a body for is dead (BLOB_UPLOAD_INVALID), and a download cut half-way starts over. `run`
   * sends its requests with `retries: 0` and the `deadline` it is given, which also bounds the
   * retries here: once no byte has moved for `deadlineMs`, the exchange gives up.
   */
  async retrying<T>(
    run: (deadline: Deadline) => Promise<T>,
    options: RetryOptions,
  ): Promise<T> {
    const deadline = this.deadline();
    const retries = this.#options.retries;
    for (let attempt = 0; ; attempt++) {
      try {
        return await run(deadline);
      } catch (error) {
        options.signal?.throwIfAborted();
        if (attempt >= retries || !isTransient(error) || isDeadlineError(error))
          throw error;
        if (deadline.expired)
          throw this.#deadlineError(options.what, attempt + 1, error);
        await this.#retry(
          options.what,
          (error as RemoteError).message,
          attempt,
          retries,
          deadline,
          options,
        );
      }
    }
  }

  /** A new idle timer with the client's timeout, for a caller that reads a long body. */
  watchdog(deadline?: Deadline): Watchdog {
    return new Watchdog(this.#options.idleTimeoutMs, deadline);
  }

  /** A new budget for one operation (see {@link OciClientOptions.deadlineMs}). */
  deadline(): Deadline {
    return new Deadline(this.#options.deadlineMs);
  }

  /** RemoteError ENVPACK_REMOTE_UNREACHABLE for a connection lost while a body was read. */
  lostError(url: string, what: string, error: unknown): RemoteError {
    return new RemoteError(
      "ENVPACK_REMOTE_UNREACHABLE",
      `lost the connection to the registry ${this.#options.displayUrl} during ${what}: ${sanitizeText((error as Error).message)}`,
      {
        url: redactUrl(url),
        hint: "Check that the registry is running and the network between is stable, then try again.",
        cause: error,
      },
    );
  }

  /** RemoteError ENVPACK_REMOTE_HTTP for an answer the caller did not expect. */
  async statusError(response: Response, what: string): Promise<RemoteError> {
    const text = (await response.text().catch(() => "")).slice(0, 300);
    const url = redactUrl(response.url || what);
    return new RemoteError(
      "ENVPACK_REMOTE_HTTP",
      `the registry ${this.#options.displayUrl} answered ${response.status} to ${what.split(" ")[0]} ${new URL(url).pathname}${text ? `: ${sanitizeText(text)}` : ""}`,
      {
        url,
        status: response.status,
        hint:
          response.status >= 500
            ? "The registry failed; try again later or check its logs."
            : "Check the registry URL and repository name.",
      },
    );
  }

  async #authenticate(
    challenge: string | null,
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const credentials = this.#options.credentials;
    const parsed = parseChallenge(challenge ?? "");
    if (parsed?.scheme === "basic") {
      if (credentials === undefined || "token" in credentials)
        throw this.#authError(url, 401);
      this.#authorization = basic(credentials);
      return;
    }
    if (parsed?.scheme !== "bearer") throw this.#authError(url, 401);
    if (credentials !== undefined && "token" in credentials) {
      this.#authorization = `Bearer ${credentials.token}`;
      return;
    }
    const realm = parsed.params.get("realm");
    if (realm === undefined) throw this.#authError(url, 401);
    // The distribution token protocol: ask the realm for a token for this service and scope,
    // with the user's credentials when there are any (anonymous otherwise).
    const tokenUrl = this.#tokenUrl(realm, url);
    for (const key of ["service", "scope"]) {
      const value = parsed.params.get(key);
      if (value !== undefined) tokenUrl.searchParams.set(key, value);
    }
    let response: Response;
    const fetchUrl = await nodeFetch();
    const watchdog = this.watchdog();
    watchdog.arm();
    try {
      response = await fetchUrl(tokenUrl.href, {
        headers:
          credentials === undefined
            ? {}
            : { Authorization: basic(credentials) },
        signal:
          signal === undefined
            ? watchdog.signal
            : AbortSignal.any([signal, watchdog.signal]),
      });
    } catch (error) {
      watchdog.stop();
      signal?.throwIfAborted();
      throw new RemoteError(
        "ENVPACK_REMOTE_UNREACHABLE",
        `cannot reach the token service of ${this.#options.displayUrl}: ${watchdog.fired ? watchdog.reason.message : sanitizeText((error as Error).message)}`,
        { url: redactUrl(tokenUrl.href), cause: error },
      );
    }
    if (response.status === 401 || response.status === 403) {
      await drain(response);
      throw this.#authError(url, response.status);
    }
    if (!response.ok)
      throw await this.statusError(response, `GET ${tokenUrl.href}`);
    type TokenAnswer = { token?: unknown; access_token?: unknown } | null;
    let body = null as TokenAnswer;
    try {
      body = (await response.json()) as TokenAnswer;
    } catch (error) {
      signal?.throwIfAborted();
      // Not JSON: no token, said below. A body that broke off is a lost connection.
      if (!(error instanceof SyntaxError))
        throw this.lostError(
          tokenUrl.href,
          "GET token",
          watchdog.fired ? watchdog.reason : error,
        );
    } finally {
      watchdog.stop();
    }
    const token =
      typeof body?.token === "string" ? body.token : body?.access_token;
    if (typeof token !== "string" || token === "")
      throw new RemoteError(
        "ENVPACK_REMOTE_AUTH",
        `the token service of ${this.#options.displayUrl} gave no token`,
        { url: redactUrl(tokenUrl.href), status: response.status },
      );
    this.#authorization = `Bearer ${token}`;
  }

  /**
   * The realm a challenge names, checked: an HTTP(S) URL, and HTTPS whenever credentials would
   * go there from a registry reached over HTTPS — a challenge must not be able to route the
   * user's password onto the network in clear text. Plain HTTP is the user's choice (--insecure).
   */
  #tokenUrl(realm: string, url: string): URL {
    let tokenUrl: URL;
    try {
      tokenUrl = new URL(realm);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      tokenUrl = new URL("invalid:");
    }
    const refuse = (why: string, hint: string) =>
      new RemoteError(
        "ENVPACK_REMOTE_AUTH",
        `the registry ${this.#options.displayUrl} names a token service ${why}`,
        { url: redactUrl(url), hint, details: { realm: redactUrl(realm) } },
      );
    if (tokenUrl.protocol !== "https:" && tokenUrl.protocol !== "http:")
      throw refuse(
        `that is not an HTTP(S) URL (${sanitizeText(redactUrl(realm)).slice(0, 200)})`,
        "The registry's token realm is misconfigured; report it to the registry's operator.",
      );
    const secure = new URL(this.#options.origin).protocol === "https:";
    if (
      tokenUrl.protocol === "http:" &&
      secure &&
      this.#options.credentials !== undefined
    )
      throw refuse(
        `on plain HTTP (${redactUrl(tokenUrl.origin)}); envpack does not send credentials there`,
        "Have the registry's token realm use HTTPS, or pass --insecure (ENVPACK_REGISTRY_INSECURE=1) if the network to it is trusted.",
      );
    return tokenUrl;
  }

  #authError(url: string, status: number): RemoteError {
    const given = this.#options.credentials !== undefined;
    return new RemoteError(
      "ENVPACK_REMOTE_AUTH",
      given
        ? `the registry ${this.#options.displayUrl} refused the credentials (${status})`
        : `the registry ${this.#options.displayUrl} needs credentials (${status})`,
      {
        url: redactUrl(url),
        status,
        hint: "Set ENVPACK_REGISTRY_USER and ENVPACK_REGISTRY_PASSWORD (or ENVPACK_REGISTRY_TOKEN), or log in with `docker login`, with push and pull rights on the repository.",
      },
    );
  }

  /**
   * Before another attempt: gives up when the backoff would outlast the deadline, else says so
   * (one `warn` event per retry) and waits the backoff.
   */
  async #retry(
    what: string,
    reason: string,
    attempt: number,
    retries: number,
    deadline: Deadline,
    how: { signal?: AbortSignal | undefined; onEvent?: OnEvent | undefined },
  ): Promise<void> {
    const delay =
      this.#options.retryBaseMs * 2 ** attempt * (0.5 + Math.random() / 2);
    if (delay >= deadline.remainingMs)
      throw this.#deadlineError(what, attempt + 1);
    how.onEvent?.({
      type: "warn",
      code: "ENVPACK_WARN_REGISTRY_RETRY",
      message: `the registry ${this.#options.displayUrl} failed ${what} (${reason}); trying again in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 2} of ${retries + 1})`,
      data: {
        what,
        attempt: attempt + 2,
        attempts: retries + 1,
        delayMs: Math.round(delay),
      },
    });
    await this.#backoff(delay, how.signal);
  }

  /** RemoteError ENVPACK_REMOTE_UNREACHABLE for an operation whose deadline is spent. */
  #deadlineError(what: string, attempts: number, cause?: unknown): RemoteError {
    const seconds = this.#options.deadlineMs / 1000;
    return new RemoteError(
      "ENVPACK_REMOTE_UNREACHABLE",
      `the registry ${this.#options.displayUrl} made no progress on ${what} for ${seconds} s (${attempts} attempt${attempts === 1 ? "" : "s"}); giving up`,
      {
        url: this.#options.displayUrl,
        hint: "Check that the registry is running and answering; the limit is ENVPACK_REGISTRY_DEADLINE_MS (the deadlineMs registry option).",
        details: { deadlineMs: this.#options.deadlineMs, attempts },
        cause,
      },
    );
  }

  async #backoff(
    delay: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, delay);
      signal?.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }
}

/** A stream body passed through a pass-through that touches the watchdog; other bodies as they are. */
function watched(
  body: BodyInit | undefined,
  watchdog: Watchdog,
): BodyInit | undefined {
  if (!(body instanceof Readable)) return body;
  const through = watchdog.through();
  pipeline(body, through).catch((error: unknown) =>
    through.destroy(error as Error),
  );
  return through;
}

/** An operation that already spent its deadline: retrying it again would spend it twice. */
function isDeadlineError(error: unknown): boolean {
  return (
    error instanceof RemoteError &&
    error.details !== undefined &&
    "deadlineMs" in error.details
  );
}

/** A failure another attempt may not meet: no connection, or a status in RETRYABLE_STATUS. */
function isTransient(error: unknown): boolean {
  return (
    error instanceof RemoteError &&
    (error.code === "ENVPACK_REMOTE_UNREACHABLE" ||
      (error.code === "ENVPACK_REMOTE_HTTP" &&
        error.status !== undefined &&
        RETRYABLE_STATUS.has(error.status)))
  );
}

/** `Basic realm="x"` or `Bearer realm="…",service="…",scope="…"`, parsed. */
export function parseChallenge(
  header: string,
): { scheme: string; params: Map<string, string> } | undefined {
  const match = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (match === null) return undefined;
  const params = new Map<string, string>();
  for (const param of (match[2] ?? "").matchAll(
    /([A-Za-z_]+)=(?:"([^"]*)"|([^,\s]*))/g,
  ))
    params.set((param[1] as string).toLowerCase(), param[2] ?? param[3] ?? "");
  return { scheme: (match[1] as string).toLowerCase(), params };
}

function basic(credentials: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
}

/** Reads and discards a body so the connection can be reused. */
async function drain(response: Response): Promise<void> {
  await response.arrayBuffer().catch(() => undefined);
}

/** node-fetch, imported on the first request: importing envpack loads no HTTP client. */
async function nodeFetch(): Promise<typeof import("node-fetch").default> {
  return (await import("node-fetch")).default;
}
