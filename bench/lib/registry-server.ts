// Starts Debian's docker-registry (the distribution registry) on 127.0.0.1 for tests and benches.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";

/** A running registry. */
export interface RegistryServer {
  /** `127.0.0.1:PORT`. */
  host: string;
  storageDir: string;
  /** Stops it (SIGTERM), waits for the exit and removes its temp dir (storage included). */
  stop(): Promise<void>;
  /** SIGKILL, at once: a crash in the middle of whatever it was doing. Keeps the storage. */
  kill(): Promise<void>;
}

/** A TCP port free right now on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string")
    throw new Error("no port");
  return address.port;
}

/**
 * Starts `docker-registry serve` with file-system storage (in `storageDir`, or a new temp dir),
 * htpasswd auth when `auth` is given, on `port` (default: a free one). Resolves once `/v2/`
 * answers.
 */
export async function startRegistry(
  options: {
    auth?: { username: string; password: string };
    storageDir?: string;
    port?: number;
  } = {},
): Promise<RegistryServer> {
  const dir = await mkdtemp(join(tmpdir(), "envpack-registry-"));
  const storageDir = options.storageDir ?? join(dir, "storage");
  const port = options.port ?? (await freePort());
  let auth = "";
  if (options.auth) {
    const { stdout } = await execa("htpasswd", [
      "-Bbn",
      options.auth.username,
      options.auth.password,
    ]);
    await writeFile(join(dir, "htpasswd"), `${stdout.trim()}\n`);
    auth = `auth:\n  htpasswd:\n    realm: envpack-test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  const config = join(dir, "config.yml");
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storageDir}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const child: ChildProcess = spawn("docker-registry", ["serve", config], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => resolve()),
  );
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null)
      throw new Error(`docker-registry exited at start: ${stderr}`);
    try {
      const response = await fetch(`http://${host}/v2/`);
      await response.arrayBuffer();
      if (response.status === 200 || response.status === 401) break;
    } catch (error) {
      if (i > 200) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    host,
    storageDir,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
