// `envpack build`: entries or a manifest → a cached, content-addressed bundle.

import { Option, type Command } from "commander";
import { UsageError } from "../../core/light.js";
import type { CommandContext } from "../context.js";
import { intOption, splitAtDashes, withScanScope } from "./options.js";

interface BuildFlags {
  manifest?: string;
  node?: string;
  platform?: string;
  prune?: boolean;
  engine?: "builtin" | "conda-pack";
  env?: string;
  out?: string;
  level?: number;
  threads?: number;
  registry?: string;
  insecure?: boolean;
  onlyImported?: boolean;
  trace?: boolean;
  include?: string[];
}

/** Registers `envpack build`. */
export function registerBuild(program: Command, context: CommandContext): void {
  withScanScope(
    program
      .command("build")
      .description(
        "build (or find in the cache) the reproducible bundle of an app",
      )
      .argument("[entry...]", "entry files to scan (or give --manifest)")
      .option(
        "--manifest <file>",
        "build from a manifest written by `envpack scan -o`",
      )
      .option(
        "--env <prefix>",
        "Conda prefix for Python entries (default: $CONDA_PREFIX)",
      )
      .option(
        "--out <dir>",
        "also copy the bundle to DIR: its index as <sha256>.json, each layer beside it",
      )
      .option(
        "--node <version>",
        "Node: bundle this Node version (from the npm registry) instead of this machine's",
      )
      .option(
        "--platform <os-arch>",
        "Node: target platform, e.g. linux-arm64 or darwin-arm64",
      )
      .option(
        "--prune",
        "Conda: keep only the scanned packages, their depends closure and python",
      )
      .addOption(
        new Option("--engine <engine>", "Conda: who packs the environment")
          .choices(["builtin", "conda-pack"])
          .default("builtin"),
      ),
  )
    .option("--level <n>", "zstd compression level, 1-19", intOption(1, 19), 3)
    .option(
      "--threads <n>",
      "zstd worker threads (default: all cores)",
      intOption(1, 256),
    )
    .option(
      "--registry <url>",
      "look the input up in this registry first, publish new bundles to it: oci://HOST[:PORT]/REPO or a directory (default: $ENVPACK_REGISTRY)",
    )
    .option("--insecure", "allow plain HTTP to an oci:// registry")
    .addHelpText(
      "after",
      "\nExample:\n  envpack build src/main.ts --out dist/\n  envpack build src/main.ts --registry oci://ghcr.io/acme/envpack --json\n  envpack scan src/main.ts -o app.manifest.json && envpack build --manifest app.manifest.json --json",
    )
    .action(async (operands: string[], flags: BuildFlags, command: Command) => {
      const { entries, command: traced } = splitAtDashes(operands, command);
      await context.run(async ({ onEvent, signal, cacheDir }) => {
        if (entries.length > 0 === (flags.manifest !== undefined)) {
          throw new UsageError(
            "ENVPACK_USAGE_BAD_ARGUMENT",
            "give entry files or --manifest FILE, not both or neither",
            {
              hint: "e.g. `envpack build src/main.ts`.",
            },
          );
        }
        const { build, loadConfig, loadRegistryConfig } =
          await import("../../api/light.js");
        const config = loadConfig({ env: flags.env });
        const result = await build({
          entries,
          manifest: flags.manifest,
          env: config.env,
          cacheDir,
          outDir: flags.out,
          prune: flags.prune,
          node: flags.node,
          platform: flags.platform,
          engine: flags.engine,
          onlyImported: flags.onlyImported,
          trace: flags.trace ? traced : undefined,
          include: flags.include,
          level: flags.level,
          threads: flags.threads,
          registry: loadRegistryConfig({
            registry: flags.registry,
            insecure: flags.insecure,
          }),
          onEvent,
          signal,
        });
        const packed = result.layers.filter((l) => !l.cached).length;
        return {
          json: { ...result },
          human: `${result.source === "built" ? "built" : result.source === "cache" ? "cached" : "pulled"} ${result.kind} bundle ${result.digest} (${(result.size / 1e6).toFixed(1)} MB${result.source === "built" ? `, ${packed} of ${result.layers.length} layers packed` : ""})\n${result.path}`,
        };
      });
    });
}
