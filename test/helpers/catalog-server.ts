// Starts Debian's catalog_server (cctools 9.9) on 127.0.0.1 for tests: HTTP queries on PORT,
// updates over UDP on PORT and over TCP on PORT+1.

import { spawn } from "node:child_process";
import { connect } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running catalog server. */
export interface CatalogServer {
  /** `127.0.0.1:PORT`, as `--catalog` takes it. */
  address: string;
  port: number;
  pid: number;
  /** Every record it holds (its `/query.json`). */
  records(): Promise<Record<string, unknown>[]>;
  /** SIGTERM, waits for the exit, removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts `catalog_server` on a port it picks (`-Z`, from a random base so that parallel runs
 * rarely meet), sending its own updates to 127.0.0.1:1 (a closed port) rather than to the
 * public cctools catalogs. Resolves once its port file is written (after all three sockets are
 * bound); a start that loses a port race is retried.
 */
export async function startCatalogServer(): Promise<CatalogServer> {
  for (let attempt = 0; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "envpack-catalog-"));
    const portFile = join(dir, "port");
    const low = 20_000 + Math.floor(Math.random() * 20_000);
    const child = spawn(
      "catalog_server",
      [
        "-I",
        "127.0.0.1",
        "-Z",
        portFile,
        "-u",
        "127.0.0.1:1",
        "-S",
        "-H",
        join(dir, "history"),
      ],
      {
        cwd: dir,
        stdio: ["ignore", "ignore", "pipe"],
        env: {
          ...process.env,
          TCP_LOW_PORT: String(low),
          TCP_HIGH_PORT: String(low + 2000),
        },
      },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    const exited = new Promise<void>((resolve) =>
      child.once("exit", () => resolve()),
    );
    const port = await waitForPort(portFile, () => child.exitCode !== null);
    if (port === undefined) {
      await exited;
      await rm(dir, { recursive: true, force: true });
      if (attempt < 3) continue;
      throw new Error(`catalog_server did not start: ${stderr}`);
    }
    const address = `127.0.0.1:${port}`;
    return {
      address,
      port,
      pid: child.pid as number,
      records: () => queryCatalog(port),
      async stop() {
        if (child.exitCode === null) child.kill("SIGTERM");
        await exited;
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

async function waitForPort(
  file: string,
  gone: () => boolean,
): Promise<number | undefined> {
  for (;;) {
    try {
      const text = (await readFile(file, "utf8")).trim();
      if (text !== "") return Number(text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    if (gone()) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** GET /query.json over a plain socket: the server ends header lines with a bare LF, which fetch refuses. */
async function queryCatalog(port: number): Promise<Record<string, unknown>[]> {
  const socket = connect(port, "127.0.0.1");
  socket.end("GET /query.json HTTP/1.0\r\n\r\n");
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  const body = text.slice(text.indexOf("\n\n") + 2);
  return JSON.parse(body) as Record<string, unknown>[];
}
