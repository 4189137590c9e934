// Gets the official node binary for a version and platform from the npm registry's
// `node-<platform>` packages (through npm itself, so its registry settings, cache and integrity
// checks apply), keeping one copy per version and platform.

import { randomBytes } from "node:crypto";
import { access, mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  ToolError,
  UsageError,
  isNotFound,
  sanitizeText,
} from "../../src/core/light.js";

/** `<os>-<arch>` as Node names its release builds. */
const PLATFORM = /^(linux|darwin|win)-(x64|arm64|armv7l|ppc64le|s390x)$/;

/**
 * Returns the path of `bin/node` for `version` on `platform`, fetching the npm package
 * `node-<platform>@<version>` with `npm pack` into `runtimesDir` the first time.
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT for a malformed version or platform
 * @throws ToolError ENVPACK_TOOL_MISSING (no npm), ENVPACK_TOOL_FAILED (npm could not fetch it)
 */
export async function fetchNodeRuntime(options: {
  version: string;
  platform: string;
  runtimesDir: string;
  signal?: AbortSignal | undefined;
}): Promise<string> {
  const version = checkNodeTarget(options.version, options.platform);
  const dir = join(options.runtimesDir, `node-${version}-${options.platform}`);
  const binary = join(
    dir,
    options.platform.startsWith("win") ? "node.exe" : join("bin", "node"),
  );
  try {
    await access(binary);
    return binary;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  const spec = `node-${options.platform}@${version}`;
  // Named as an atomic write's temp (tempWriterPid): `cache gc` removes it once its process is gone.
  const work = join(
    options.runtimesDir,
    `.fetch.${process.pid}-${randomBytes(6).toString("hex")}.tmp`,
  );
  await mkdir(work, { recursive: true });
  try {
    // Loaded here: only a build for another Node version fetches one.
    const [{ execa }, { extract }] = await Promise.all([
      import("execa"),
      import("tar"),
    ]);
    const packed = await execa(
      "npm",
      ["pack", spec, "--pack-destination", work, "--silent"],
      {
        reject: false,
        cancelSignal: options.signal,
        stdin: "ignore",
      },
    );
    if (packed.failed) {
      // A spawn that found no npm fails as a file does.
      const missing = isNotFound(packed);
      throw new ToolError(
        missing ? "ENVPACK_TOOL_MISSING" : "ENVPACK_TOOL_FAILED",
        missing
          ? "npm is not installed"
          : `npm pack ${spec} failed (exit ${packed.exitCode ?? "?"}): ${sanitizeText(String(packed.stderr), { multiline: true, maxLines: 3 }).split("\n").join(" ") || "no output"}`,
        {
          hint: "Check the version exists (`npm view node-<platform> versions`) and the npm registry is reachable.",
        },
      );
    }
    const tarball = (await readdir(work)).find((name) => name.endsWith(".tgz"));
    if (tarball === undefined)
      throw new ToolError(
        "ENVPACK_TOOL_FAILED",
        `npm pack ${spec} wrote no tarball`,
      );
    const unpacked = join(work, "unpacked");
    await mkdir(unpacked);
    await extract({
      file: join(work, tarball),
      cwd: unpacked,
      strip: 1,
      strict: true,
    });
    await access(
      join(
        unpacked,
        options.platform.startsWith("win") ? "node.exe" : join("bin", "node"),
      ),
    );
    await rename(unpacked, dir).catch(async (error: NodeJS.ErrnoException) => {
      // Another build fetched the same runtime first: theirs is as good as ours.
      if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
    });
    return binary;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Validates a `--node` version and `--platform` and returns the version without a leading `v`.
 * @throws UsageError ENVPACK_USAGE_BAD_ARGUMENT
 */
export function checkNodeTarget(version: string, platform: string): string {
  const bare = version.replace(/^v/, "");
  if (!/^\d+\.\d+\.\d+$/.test(bare)) {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `--node takes a full version like 20.18.0, got '${version}'`,
    );
  }
  if (!PLATFORM.test(platform)) {
    throw new UsageError(
      "ENVPACK_USAGE_BAD_ARGUMENT",
      `unknown platform '${platform}'`,
      {
        hint: "Use <os>-<arch> as Node names its builds: linux-x64, linux-arm64, darwin-arm64, darwin-x64.",
      },
    );
  }
  return bare;
}
