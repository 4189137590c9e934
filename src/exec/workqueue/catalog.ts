// Advertising a manager to catalog servers, so that workers and factories started with
// `-M PROJECT` find it without knowing its address. cctools 9.9's catalog_server takes a JSON
// object as one UDP datagram on its port (or over TCP on port+1) and records it with the sender's
// address; `work_queue_worker -M` asks the catalog over HTTP for every record, keeps those of type
// `wq_master`/`wq_manager` whose `project` matches its pattern, and connects to `address:port`.

import { createSocket, type Socket } from "node:dgram";
import { UsageError, type OnEvent } from "../../core/light.js";
import { catalogRecord, type QueueSnapshot } from "./status.js";

/** The catalog servers cctools tools use when given none. */
export const DEFAULT_CATALOG =
  "catalog.cse.nd.edu:9097,backup-catalog.cse.nd.edu:9097";
/** A catalog server's port when `catalog` names only a host. */
export const CATALOG_PORT = 9097;
/** How often the C manager re-advertises (WORK_QUEUE_UPDATE_INTERVAL, 60 s). */
export const CATALOG_INTERVAL_MS = 60_000;

/** One catalog server. */
export interface CatalogAddress {
  host: string;
  port: number;
}

/**
 * Parses `catalog`: `HOST:PORT`, `HOST` (port 9097) or a comma-separated list of them, as the
 * `-C`/`--catalog` option of cctools' tools.
 * @throws UsageError ENVPACK_USAGE_BAD_CONFIG naming the bad entry
 */
export function parseCatalog(spec: string): CatalogAddress[] {
  const bad = (entry: string, why: string) =>
    new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `catalog ${JSON.stringify(entry)}: ${why}`,
      {
        hint: 'Give catalog as "HOST:PORT" (or "HOST", port 9097), several separated by commas, e.g. "127.0.0.1:9097".',
      },
    );
  if (spec.trim() === "") throw bad(spec, "empty");
  return spec.split(",").map((raw) => {
    const entry = raw.trim();
    const match = /^(\[[^\]]+\]|[^:\s[\]]+)(?::(\d+))?$/.exec(entry);
    if (match === null) throw bad(entry, "not HOST:PORT");
    const port = match[2] === undefined ? CATALOG_PORT : Number(match[2]);
    if (port < 1 || port > 65535) throw bad(entry, `port ${port} out of range`);
    return { host: (match[1] as string).replace(/^\[|\]$/g, ""), port };
  });
}

/**
 * Checks a project name: a non-empty line (workers match it whole against their `-M` pattern).
 * @throws UsageError ENVPACK_USAGE_BAD_CONFIG
 */
export function checkProject(project: string): string {
  if (project === "" || /[\u0000-\u001f\u007f]/.test(project))
    throw new UsageError(
      "ENVPACK_USAGE_BAD_CONFIG",
      `project ${JSON.stringify(project)}: a project name is a non-empty line of text`,
      { hint: 'Name the project as workers will find it, e.g. "myproj".' },
    );
  return project;
}

/** The bytes of one update: the record as JSON (the catalog reads JSON when it starts with `{`). */
export function encodeCatalogUpdate(snapshot: QueueSnapshot): Buffer {
  return Buffer.from(JSON.stringify(catalogRecord(snapshot)));
}

/** Options of a {@link CatalogAdvertiser}. */
export interface CatalogAdvertiserOptions {
  catalogs: CatalogAddress[];
  /** The queue's state when an update is sent; it must carry `project`. */
  snapshot: () => QueueSnapshot;
  /** Time between periodic updates (default {@link CATALOG_INTERVAL_MS}). */
  intervalMs?: number;
  onEvent?: OnEvent;
}

/**
 * Sends the manager's catalog record to every catalog server now, every `intervalMs` and soon
 * after {@link CatalogAdvertiser.update} (at most once a second), until stopped. A datagram that
 * cannot be sent (no route, unknown host) is reported once as a warning and retried next time:
 * the manager works without its catalog, only `-M` clients do not find it.
 */
export class CatalogAdvertiser {
  readonly #options: CatalogAdvertiserOptions;
  #socket: Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #lastSent = 0;
  #warned = false;
  #sent = 0;

  constructor(options: CatalogAdvertiserOptions) {
    this.#options = options;
  }

  /** Opens the socket and sends the first update (resolves once it is handed to the kernel). */
  async start(): Promise<void> {
    if (this.#socket !== undefined) return;
    const socket = createSocket("udp4");
    socket.on("error", (error) => this.#warn(error));
    await new Promise<void>((resolve) => socket.bind(0, resolve));
    socket.unref();
    this.#socket = socket;
    await this.#send();
    this.#timer = setInterval(
      () => void this.#send(),
      this.#options.intervalMs ?? CATALOG_INTERVAL_MS,
    );
    this.#timer.unref();
  }

  /** Asks for an update soon (the queue changed); coalesces calls to one a second. */
  update(): void {
    if (this.#socket === undefined || this.#soon !== undefined) return;
    const wait = Math.max(0, this.#lastSent + 1000 - Date.now());
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.#send();
    }, wait);
    this.#soon.unref();
  }

  /** Updates sent so far (datagrams handed to the kernel, over all catalogs). */
  get sent(): number {
    return this.#sent;
  }

  /** Stops advertising (the catalog forgets the record after its lifetime, as for the C manager). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#timer = this.#soon = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined)
      await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  async #send(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#lastSent = Date.now();
    const bytes = encodeCatalogUpdate(this.#options.snapshot());
    await Promise.all(
      this.#options.catalogs.map(
        (catalog) =>
          new Promise<void>((resolve) =>
            socket.send(bytes, catalog.port, catalog.host, (error) => {
              if (error) this.#warn(error, catalog);
              else this.#sent++;
              resolve();
            }),
          ),
      ),
    );
  }

  #warn(error: Error, catalog?: CatalogAddress): void {
    if (this.#warned) return;
    this.#warned = true;
    const where =
      catalog === undefined ? "" : ` to ${catalog.host}:${catalog.port}`;
    this.#options.onEvent?.({
      type: "warn",
      code: "ENVPACK_WARN_WQ_CATALOG",
      message: `the catalog update${where} could not be sent (${error.message}); workers started with -M will not find this manager`,
      data: {
        ...(catalog === undefined ? {} : { catalog }),
        error: error.message,
      },
    });
  }
}
