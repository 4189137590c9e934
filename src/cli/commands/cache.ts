// `envpack cache ls|rm|gc`: look after the local bundle cache.

import type { Command } from "commander";
import type { CommandContext } from "../context.js";

/** Registers `envpack cache` and its subcommands. */
export function registerCache(program: Command, context: CommandContext): void {
  const cache = program
    .command("cache")
    .description("list, remove or garbage-collect cached bundles");
  cache
    .command("ls")
    .description(
      "list cached bundles (most recently used first) and their layers, each counted once",
    )
    .addHelpText("after", "\nExample:\n  envpack cache ls --json")
    .action(async () => {
      await context.run(async ({ cacheDir }) => {
        const { cacheList } = await import("../../api/index.js");
        const listing = await cacheList(cacheDir);
        const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
        const lines = listing.bundles.map(
          (b) =>
            `${b.digest}  ${mb(b.bytes)}  ${new Date(b.usedAt).toISOString()}${b.format === 2 ? "  (format 2)" : `  ${b.layers.length} layers`}`,
        );
        const human =
          lines.length === 0
            ? `no bundles in ${cacheDir}`
            : [
                ...lines,
                `${listing.bundles.length} bundles, ${listing.layers.length} layers, ${mb(listing.bytes)} (each layer counted once); memo stores ${mb(listing.memo.bytes)} in ${listing.memo.files} files`,
              ].join("\n");
        return { json: { cacheDir, ...listing }, human };
      });
    });
  cache
    .command("rm")
    .description("remove bundles and their unpacked environments")
    .argument("<digest...>", "sha256:… digests from `envpack cache ls`")
    .addHelpText("after", "\nExample:\n  envpack cache rm sha256:3f…9a")
    .action(async (digests: string[]) => {
      await context.run(async ({ cacheDir }) => {
        const { cacheRemove } = await import("../../api/index.js");
        const result = await cacheRemove(cacheDir, digests);
        return {
          json: { ...result },
          human: [
            ...result.removed.map((d) => `removed ${d}`),
            ...result.layers.map((d) => `removed layer ${d}`),
            ...result.missing.map((d) => `not cached: ${d}`),
          ].join("\n"),
        };
      });
    });
  cache
    .command("gc")
    .description(
      "remove least recently used bundles until the cache fits a size, and older memo entries",
    )
    .requiredOption(
      "--max-size <size>",
      "the size the bundle and layer blobs must fit, e.g. 2G or 500M",
    )
    .addHelpText(
      "after",
      [
        "",
        "The memo stores (fingerprints/, scan/, compiled/, conda/builtins/) do not",
        "count against --max-size: an entry goes when it was last used (its access or",
        "modification time, plus a day for relatime) before the least recently used",
        "bundle or layer kept; all go when none is. Files in retired formats, temps of",
        "dead processes and package-trees/ records of projects that no longer exist",
        "always go. A removed entry makes the next build slower, never wrong.",
        "",
        "Example:",
        "  envpack cache gc --max-size 5G",
      ].join("\n"),
    )
    .action(async (flags: { maxSize: string }) => {
      await context.run(async ({ cacheDir }) => {
        const { cacheGc, parseSize } = await import("../../api/index.js");
        const result = await cacheGc(cacheDir, parseSize(flags.maxSize));
        return {
          json: { ...result },
          human: `removed ${result.removed.length} bundles and ${result.layers.length} layers, freed ${(result.freed / 1e6).toFixed(1)} MB, ${(result.kept / 1e6).toFixed(1)} MB kept; removed ${result.memo.files} memo files (${(result.memo.bytes / 1e6).toFixed(1)} MB)`,
        };
      });
    });
}
