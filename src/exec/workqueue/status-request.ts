// Status requests on the manager's port: a client that is not a worker connects, sends one line
// (`queue_status`, `task_status`, `worker_status`, `wable_status`, `resources_status`, or an HTTP
// GET of `/<that name>`) and reads one JSON array before the manager closes, as the C manager
// answers `work_queue_status HOST PORT` and `work_queue_factory HOST PORT`.

import {
  categoriesStatus,
  queueStatus,
  tasksStatus,
  workersStatus,
  type QueueSnapshot,
  type StatusObject,
} from "./status.js";

/** The JSON documents a client may ask for. */
export const STATUS_REQUESTS = [
  "queue_status",
  "task_status",
  "worker_status",
  "wable_status",
  "resources_status",
] as const;

/** What a status client asked for. */
export interface StatusRequest {
  /** A JSON document, or the HTML index of an HTTP GET of `/`. */
  kind: (typeof STATUS_REQUESTS)[number] | "index" | "not-found";
  /**
   * Asked over HTTP: read the request's header lines up to the empty one before answering (a
   * socket closed with unread bytes may reset and lose the answer).
   */
  http: boolean;
}

const HTTP_GET = /^GET (\S+) HTTP\/\d+\.\d+$/;

/**
 * The status request a connection's first line makes (without its line end), or undefined when
 * the line is something else (a worker's greeting, a password exchange, garbage).
 */
export function parseStatusRequest(line: string): StatusRequest | undefined {
  if ((STATUS_REQUESTS as readonly string[]).includes(line))
    return { kind: line as StatusRequest["kind"], http: false };
  const get = HTTP_GET.exec(line);
  if (get === null) return undefined;
  const path = (get[1] as string).replace(/\?.*$/, "");
  if (path === "/") return { kind: "index", http: true };
  const name = path.slice(1);
  return (STATUS_REQUESTS as readonly string[]).includes(name)
    ? { kind: name as StatusRequest["kind"], http: true }
    : { kind: "not-found", http: true };
}

/** The JSON array answering `kind`. */
export function statusDocument(
  kind: (typeof STATUS_REQUESTS)[number],
  snapshot: QueueSnapshot,
  now = Date.now(),
): StatusObject[] {
  switch (kind) {
    case "queue_status":
    case "resources_status":
      return [queueStatus(snapshot)];
    case "task_status":
      return tasksStatus(snapshot, now);
    case "worker_status":
      return workersStatus(snapshot, now);
    case "wable_status":
      return categoriesStatus(snapshot);
  }
}

const INDEX_HTML =
  "<h1>Work Queue Data API</h1>\n<ul>\n" +
  STATUS_REQUESTS.filter((name) => name !== "wable_status")
    .map((name) => `<li> <a href="/${name}">${name}</a>\n`)
    .join("") +
  "</ul>\n";

/**
 * Everything to write back to a status client, after which the manager closes the connection:
 * the JSON array for a plain request; for HTTP, a response with it (or the index, or a 404).
 */
export function statusReply(
  request: StatusRequest,
  snapshot: QueueSnapshot,
  now = Date.now(),
): string {
  if (request.kind === "index" || request.kind === "not-found") {
    const found = request.kind === "index";
    const body = found ? INDEX_HTML : "not found\n";
    return httpResponse(
      found ? "200 OK" : "404 Not Found",
      found ? "text/html" : "text/plain",
      body,
    );
  }
  const json = JSON.stringify(statusDocument(request.kind, snapshot, now));
  return request.http ? httpResponse("200 OK", "text/plain", json) : json;
}

function httpResponse(status: string, type: string, body: string): string {
  return (
    `HTTP/1.1 ${status}\r\nConnection: close\r\n` +
    `Access-Control-Allow-Origin: *\r\nContent-Type: ${type}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
