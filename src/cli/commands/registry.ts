// `envpack push` and `envpack pull`: move bundles between the cache and a registry.

import type { Command } from "commander";
import { UsageError } from "../../core/light.js";
import type { CommandContext } from "../context.js";

interface RegistryFlags {
  registry?: string;
  insecure?: boolean;
}

/** Registers `envpack push` and `envpack pull`. */
export function registerRegistry(
  program: Command,
  context: CommandContext,
): void {
  registryFlags(program.command("push"))
    .description(
      "publish a cached bundle to a registry, under its input digest",
    )
    .argument(
      "<digest>",
      "the bundle's sha256:… digest (from `envpack build --json`)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  envpack push sha256:3f…9a --registry oci://ghcr.io/acme/envpack",
    )
    .action(async (digest: string, flags: RegistryFlags) => {
      await context.run(async ({ onEvent, signal, cacheDir }) => {
        const { push, loadRegistryConfig } = await import("../../api/index.js");
        const result = await push({
          digest,
          registry: requireRegistry(loadRegistryConfig(flags)),
          cacheDir,
          onEvent,
          signal,
        });
        return {
          json: { ...result },
          human: `pushed ${result.digest} (${megabytes(result.size)}${result.layers === undefined ? "" : `, ${result.layers.length} layers`}; sent ${megabytes(result.sentBytes)}) to ${result.registry}\n${result.inputDigests.map((d) => `input ${d}`).join("\n")}`,
        };
      });
    });
  registryFlags(program.command("pull"))
    .description("fetch a bundle from a registry into the cache, verified")
    .argument("[digest]", "the bundle's sha256:… digest (or give --input)")
    .option("--input <digest>", "the input digest the bundle was built from")
    .addHelpText(
      "after",
      "\nExample:\n  envpack pull --input sha256:7c…01 --registry oci://ghcr.io/acme/envpack --json",
    )
    .action(
      async (
        digest: string | undefined,
        flags: RegistryFlags & { input?: string },
      ) => {
        await context.run(async ({ onEvent, signal, cacheDir }) => {
          const { pull, loadRegistryConfig } =
            await import("../../api/index.js");
          const result = await pull({
            digest,
            inputDigest: flags.input,
            registry: requireRegistry(loadRegistryConfig(flags)),
            cacheDir,
            onEvent,
            signal,
          });
          return {
            json: { ...result },
            human: `pulled ${result.digest} (${result.layers === undefined ? megabytes(result.size) : `${result.layers.length} layers`}; fetched ${megabytes(result.transferred)}) from ${result.registry}\n${result.path}`,
          };
        });
      },
    );
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e5 ? 3 : 1)} MB`;
}

/** `--registry` and `--insecure`, as push and pull take them. */
function registryFlags(command: Command): Command {
  return command
    .option(
      "--registry <url>",
      "oci://HOST[:PORT]/REPO or a directory (default: $ENVPACK_REGISTRY)",
    )
    .option("--insecure", "allow plain HTTP to an oci:// registry");
}

function requireRegistry<T>(registry: T | undefined): T {
  if (registry === undefined)
    throw new UsageError("ENVPACK_USAGE_BAD_ARGUMENT", "no registry given", {
      hint: "Pass --registry URL or set ENVPACK_REGISTRY.",
    });
  return registry;
}
