// The run use case: unpack a bundle once (from a file or the cache) and run a command inside it.

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
import { withCacheHold } from "./cache-hold.js";

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
  // A `cache gc` waits until the command ends: it would remove the tree it runs in.
  return withCacheHold(options.cacheDir, options.signal, () =>
    runHeld(options),
  );
}

async function runHeld(options: RunOptions): Promise<RunResult> {
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
  // Loaded here: a library import of envpack loads no process library.
  const { execa } = await import("execa");
  const result = await execa(command as string, args, {
    cwd: options.cwd,
    stdio: "inherit",
    reject: false,
    cancelSignal: options.signal,
    env: bundleEnv(process.env, dir),
    extendEnv: false,
  });
  if (result.failed && result.exitCode === undefined && !result.isTerminated) {
    throw new InputError(
      "ENVPACK_INPUT_ENTRY_NOT_FOUND",
      `cannot run ${command}: ${result.shortMessage}`,
      {
        hint: "Check the command name; the bundle's bin/ is first on PATH.",
      },
    );
  }
  // As a shell reports a command a signal ended: 128 + the signal's number.
  const signalNumber = result.signal
    ? 128 + (constants.signals[result.signal] ?? 0)
    : undefined;
  return { exitCode: result.exitCode ?? signalNumber ?? 1, env: dir, digest };
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
