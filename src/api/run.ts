// The run use case: unpack a bundle once (from a file or the cache) and run a command inside it.

import { spawn } from "node:child_process";
import { constants } from "node:os";
import { basename, join, resolve } from "node:path";
import { stat } from "node:fs/promises";
import {
  InputError,
  bundleEnv,
  hashFile,
  isDigest,
  isEnvpackError,
  isNotFound,
  type Digest,
  type OnEvent,
} from "../core/light.js";
import { openUnpacked } from "../../packer/light.js";
import { LocalStore } from "../registry/light.js";
import { dropDamagedBlob } from "./cache.js";

/** Options of {@link run}. */
export interface RunOptions {
  /** A bundle file, or the digest of a bundle in the cache. */
  bundle: string;
  /** The command and its arguments; empty runs a Node bundle's app. */
  command: string[];
  /** Arguments passed to the app when `command` is empty. */
  appArgs?: string[] | undefined;
  cacheDir: string;
  cwd?: string | undefined;
  onEvent?: OnEvent | undefined;
  signal?: AbortSignal | undefined;
}

/** How the command ended. */
export interface RunResult {
  exitCode: number;
  /** The unpacked environment it ran in. */
  env: string;
  digest: Digest;
}

/**
 * Runs a command in a bundle's environment (unpacked once under `<cacheDir>/envs/`), with the
 * bundle's `bin/` first on PATH and stdio inherited.
 * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND when the bundle is neither a file nor cached
 */
export async function run(options: RunOptions): Promise<RunResult> {
  const { file, digest } = await locateBundle(
    options.bundle,
    options.cacheDir,
    options.cwd ?? process.cwd(),
  );
  const { dir } = await openUnpacked({
    file,
    digest,
    envsDir: join(options.cacheDir, "envs"),
    onEvent: options.onEvent,
    signal: options.signal,
  }).catch(async (error: unknown) => {
    // A damaged cached blob (the index, or the layer the error names) is dropped with its index
    // records, so the next build rebuilds it.
    if (
      isDigest(options.bundle) &&
      isEnvpackError(error) &&
      error.code === "ENVPACK_INTEGRITY_DIGEST_MISMATCH"
    ) {
      const named = `sha256:${basename(String(error.details?.["file"] ?? ""))}`;
      await dropDamagedBlob(options.cacheDir, isDigest(named) ? named : digest);
    }
    throw error;
  });
  const [command, ...args] =
    options.command.length > 0
      ? options.command
      : [join(dir, "bin", "envpack-app"), ...(options.appArgs ?? [])];
  const exitCode = await runInherited(command as string, args, {
    cwd: options.cwd,
    env: bundleEnv(process.env, dir),
    signal: options.signal,
  });
  return { exitCode, env: dir, digest };
}

/** After a cancel's SIGTERM, SIGKILL follows this much later (as execa's forceKillAfterDelay). */
const FORCE_KILL_AFTER_MS = 5000;

/**
 * Runs `command` with stdio inherited and resolves with its exit code, or 128 + the number of the
 * signal that ended it (as a shell reports it). A cancel sends SIGTERM, then SIGKILL, and rejects
 * with the signal's reason once the command has ended. Plain
 * child_process, not execa: the ready path of `envpack run` loads no process library (execa is
 * the largest module it would load).
 * @throws InputError ENVPACK_INPUT_ENTRY_NOT_FOUND when the command cannot be started
 */
function runInherited(
  command: string,
  args: string[],
  options: {
    cwd?: string | undefined;
    env: NodeJS.ProcessEnv;
    signal?: AbortSignal | undefined;
  },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: "inherit",
    });
    let forceKill: NodeJS.Timeout | undefined;
    const cancel = () => {
      child.kill("SIGTERM");
      forceKill = setTimeout(() => child.kill("SIGKILL"), FORCE_KILL_AFTER_MS);
      forceKill.unref();
    };
    const settle = () => {
      options.signal?.removeEventListener("abort", cancel);
      clearTimeout(forceKill);
    };
    child.on("error", (error) => {
      // Only a failed start is the caller's mistake; a failed kill (an error after the start,
      // maybe more than one) leaves the close to report.
      if (child.pid !== undefined) return;
      settle();
      reject(
        new InputError(
          "ENVPACK_INPUT_ENTRY_NOT_FOUND",
          `cannot run ${command}: ${error.message}`,
          {
            hint: "Check the command name; the bundle's bin/ is first on PATH.",
            cause: error,
          },
        ),
      );
    });
    child.once("close", (code, signalName) => {
      settle();
      if (options.signal?.aborted) reject(options.signal.reason);
      else if (code !== null) resolve(code);
      else
        resolve(
          128 +
            (signalName === null ? 0 : (constants.signals[signalName] ?? 0)),
        );
    });
    if (child.pid === undefined) return;
    if (options.signal?.aborted) cancel();
    else options.signal?.addEventListener("abort", cancel, { once: true });
  });
}

async function locateBundle(
  bundle: string,
  cacheDir: string,
  cwd: string,
): Promise<{ file: string; digest: Digest }> {
  if (isDigest(bundle)) {
    const store = new LocalStore(cacheDir);
    if (await store.has(bundle))
      return { file: store.blobPath(bundle), digest: bundle };
    throw new InputError(
      "ENVPACK_INPUT_ENTRY_NOT_FOUND",
      `no bundle ${bundle} in the cache ${cacheDir}`,
      {
        hint: "Build it first (`envpack build`), or pass the bundle file.",
      },
    );
  }
  const file = resolve(cwd, bundle);
  const found = await stat(file).then(
    (info) => info.isFile(),
    (error: unknown) => {
      if (isNotFound(error)) return false;
      throw error;
    },
  );
  if (!found)
    throw new InputError(
      "ENVPACK_INPUT_ENTRY_NOT_FOUND",
      `bundle not found: ${file}`,
      {
        hint: "Pass a .tar.zst file written by `envpack build`, or a sha256:… digest from the cache.",
      },
    );
  const named = /^([0-9a-f]{64})\.(?:tar\.zst|json)$/.exec(basename(file));
  // A file named by its digest is checked against the name; any other is named by its bytes.
  return {
    file,
    digest: named
      ? (`sha256:${named[1]}` as Digest)
      : (await hashFile(file)).digest,
  };
}
