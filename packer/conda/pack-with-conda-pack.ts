// `--engine conda-pack`: runs a conda-pack found on PATH and repacks its archive into envpack's deterministic bundle entries.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  ToolError,
  isNotFound,
  sanitizeText,
  type WarnEvent,
} from "../../src/core/light.js";
import { planCondaBundle, type CondaBundlePlan } from "./plan-conda-bundle.js";

/** What conda-pack adds to an environment; envpack's own relocation replaces them. */
const CONDA_PACK_ADDITIONS = new Set([
  "bin/conda-unpack",
  "bin/conda_unpack_progress.py",
  "bin/activate",
  "bin/deactivate",
  "bin/activate.fish",
]);

/** How much of a failing tool's stderr an error message quotes. */
const STDERR_TAIL_LINES = 15;

/** Options of {@link packCondaWithCondaPack}. */
export interface PackCondaWithCondaPackOptions {
  prefix: string;
  /** The conda-pack executable (default `conda-pack`, looked up on PATH). */
  condaPackBin?: string;
  /** Passed to the planner, see `PlanCondaBundleOptions.keep`. */
  keep?: ReadonlySet<string>;
  /** Where the temporary archive and its extraction go (default: the OS temp directory). */
  tempDir?: string;
  onWarn?: (warning: WarnEvent) => void;
  signal?: AbortSignal;
  /** Time limit for conda-pack in milliseconds (default 30 minutes). */
  timeoutMs?: number;
}

/** A plan whose entries read files from a temporary directory; call `dispose` once the bundle is written. */
export interface CondaPackPlan extends CondaBundlePlan {
  dispose: () => Promise<void>;
}

/**
 * Runs `conda-pack -p PREFIX -o TEMP.tar.gz`, extracts the archive with node-tar into a temporary
 * directory and plans bundle entries from it (conda-pack's `conda-unpack` and activation scripts
 * left out; its placeholder files, which it took from the package cache, recorded for envpack's
 * relocation). The entries point into the temporary directory until `dispose()`.
 * @throws ToolError ENVPACK_TOOL_MISSING when conda-pack is not found, ENVPACK_TOOL_FAILED when it
 *   fails (its exit code and stderr tail in the message and details); planner errors as `planCondaBundle`
 */
export async function packCondaWithCondaPack(
  options: PackCondaWithCondaPackOptions,
): Promise<CondaPackPlan> {
  const prefix = resolve(options.prefix);
  const command = options.condaPackBin ?? "conda-pack";
  const work = await mkdtemp(
    join(options.tempDir ?? tmpdir(), "envpack-conda-pack-"),
  );
  const dispose = () => rm(work, { recursive: true, force: true });
  try {
    const archive = join(work, "env.tar.gz");
    const args = ["-p", prefix, "-o", archive, "--format", "tar.gz", "--quiet"];
    // Loaded here: only the conda-pack engine uses them.
    const [{ execa }, { x: extractTar }] = await Promise.all([
      import("execa"),
      import("tar"),
    ]);
    const result = await execa(command, args, {
      reject: false,
      stdin: "ignore",
      timeout: options.timeoutMs ?? 30 * 60_000,
      forceKillAfterDelay: 5_000,
      cleanup: true,
      ...(options.signal ? { cancelSignal: options.signal } : {}),
    });
    if (result.isCanceled) options.signal?.throwIfAborted();
    // A spawn that found no conda-pack fails as a file does.
    if (result.cause !== undefined && isNotFound(result.cause))
      throw new ToolError(
        "ENVPACK_TOOL_MISSING",
        `conda-pack not found: ${command}`,
        {
          hint: "Install conda-pack (`conda install -c conda-forge conda-pack`) or build with the default engine (drop --engine conda-pack).",
          details: { command },
        },
      );
    if (result.failed || result.exitCode !== 0) {
      const tail = sanitizeText(String(result.stderr ?? ""), {
        multiline: true,
        maxLines: STDERR_TAIL_LINES,
      });
      throw new ToolError(
        "ENVPACK_TOOL_FAILED",
        `conda-pack failed on ${prefix} (${result.timedOut ? "timed out" : `exit code ${result.exitCode ?? "none"}`})${tail === "" ? "" : `: ${tail.split("\n").join(" | ")}`}`,
        {
          hint: "Fix what conda-pack reports, or build with the default engine (drop --engine conda-pack).",
          details: {
            command,
            args,
            exitCode: result.exitCode ?? null,
            stderr: tail,
          },
        },
      );
    }
    const env = join(work, "env");
    await mkdir(env);
    await extractTar({ file: archive, cwd: env, strict: true });
    await rm(archive);
    const plan = await planCondaBundle({
      prefix: env,
      embeddedPrefix: prefix,
      exclude: CONDA_PACK_ADDITIONS,
      trustContents: true,
      ...(options.keep ? { keep: options.keep } : {}),
      ...(options.onWarn ? { onWarn: options.onWarn } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { ...plan, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
