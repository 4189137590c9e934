// `envpack scan`: entries → manifest.

import type { Command } from "commander";
import { UsageError, type Manifest } from "../../core/light.js";
import { splitAtDashes, withScanScope } from "./options.js";
import type { CommandContext } from "../context.js";

interface ScanFlags {
  env?: string;
  output?: string;
  strict?: boolean;
  onlyImported?: boolean;
  trace?: boolean;
  include?: string[];
}

/** Registers `envpack scan`. */
export function registerScan(program: Command, context: CommandContext): void {
  withScanScope(
    program
      .command("scan")
      .description(
        "statically analyse an app's imports and write its dependency manifest",
      )
      .argument(
        "<entry...>",
        "entry files: .ts .tsx .mts .cts .js .mjs .cjs .jsx, or .py with --env",
      )
      .option(
        "--env <prefix>",
        "Conda prefix for Python entries (default: $CONDA_PREFIX)",
      )
      .option("-o, --output <file>", "write the manifest to FILE (atomically)")
      .option(
        "--strict",
        "exit 2 when the app has unresolved imports that are not optional",
      ),
  )
    .addHelpText(
      "after",
      [
        "",
        "Declared dependencies ship unless --only-imported:",
        "  Node: package.json dependencies and optionalDependencies, not devDependencies.",
        "  Python: pyproject.toml [project] dependencies and [tool.poetry.dependencies],",
        "  setup.cfg install_requires, setup.py's literal install_requires (parsed, never",
        "  run), Pipfile [packages] and requirements*.txt. Not read: extras, PEP 735",
        "  [dependency-groups], other Poetry groups, [dev-packages], and requirements",
        "  files whose name, split at - _ or ., has a word dev, devel, develop,",
        "  development, test, tests, testing, doc, docs, lint, typing or ci",
        "  (requirements-dev.txt, requirements_test.txt). Markers are evaluated for the",
        "  env's Python version and platform. --include ships what they leave out.",
        "",
        "Example:",
        "  envpack scan src/main.ts -o envpack.manifest.json",
        "  envpack scan app.py --env ~/miniconda3/envs/demo --json",
        "  envpack scan src/main.js --trace -- node src/main.js --dry-run",
      ].join("\n"),
    )
    .action(async (operands: string[], flags: ScanFlags, command: Command) => {
      const { entries, command: traced } = splitAtDashes(operands, command);
      if (!flags.trace && traced.length > 0)
        throw new UsageError(
          "ENVPACK_USAGE_BAD_ARGUMENT",
          "a command after -- is only for --trace",
          {
            hint: "e.g. `envpack scan src/main.js --trace -- node src/main.js`.",
          },
        );
      await context.run(async ({ onEvent, signal, mode, cacheDir }) => {
        const { scan, loadConfig } = await import("../../api/light.js");
        const config = loadConfig({ env: flags.env });
        const manifest = await scan({
          entries,
          env: config.env,
          strict: flags.strict,
          output: flags.output,
          onlyImported: flags.onlyImported,
          trace: flags.trace ? traced : undefined,
          include: flags.include,
          cacheDir,
          onEvent,
          signal,
        });
        return {
          json: manifest as unknown as Record<string, unknown>,
          human: mode.json ? "" : summarise(manifest, flags.output),
        };
      });
    });
}

function summarise(manifest: Manifest, output: string | undefined): string {
  const settled = manifest.unresolved.filter(
    (u) => u.resolvedByTrace !== undefined,
  ).length;
  const open = manifest.unresolved.length - settled;
  const lines = [
    `${manifest.kind} app: ${manifest.files.length} files, ${manifest.packages.length} packages, ${open} unresolved${settled > 0 ? ` (${settled} more resolved by the trace)` : ""}`,
    `runtime: ${manifest.runtime.name} ${manifest.runtime.version} (${manifest.runtime.platform})`,
    `input digest: ${manifest.inputDigest}`,
  ];
  const declared = manifest.packages.filter((p) => p.reason === "declared");
  if (declared.length > 0) {
    const sources = manifest.files
      .filter((f) => f.reason === "declared")
      .map((f) => f.path);
    const where =
      manifest.kind === "node" || sources.length === 0
        ? "package.json"
        : sources.join(", ");
    lines.push(
      `declared: ${declared.map((p) => p.name).join(", ")} (in ${where}, reached by no import) ${declared.length === 1 ? "ships" : "ship"}; --only-imported leaves ${declared.length === 1 ? "it" : "them"} out`,
    );
  }
  const broken = manifest.files.filter((f) => f.problem);
  for (const file of broken) {
    const at = file.problem?.line
      ? `:${file.problem.line}:${file.problem.column ?? 0}`
      : "";
    lines.push(
      `unreadable: ${file.path}${at} ${file.problem?.reason}: ${file.problem?.message}`,
    );
  }
  for (const u of manifest.unresolved) {
    const where = u.package ? ` (in ${u.package})` : "";
    const settled = u.resolvedByTrace
      ? ` (resolved by the trace: ${u.resolvedByTrace.join(", ")})`
      : "";
    lines.push(
      `unresolved: ${u.file}:${u.line} '${u.specifier}' ${u.reason}${u.optional ? " (optional)" : ""}${where}${settled}`,
    );
  }
  const traced = [
    ...manifest.files.filter((f) => f.reason === "traced").map((f) => f.path),
    ...manifest.packages
      .filter((p) => p.reason === "traced")
      .map((p) => `${p.name}@${p.version}`),
  ];
  for (const item of traced)
    lines.push(
      `traced: ${item} (loaded or listed by the run; the analysis missed it)`,
    );
  if (manifest.trace !== undefined) {
    const { files, packages } = manifest.trace.notLoaded;
    const names = [
      ...files,
      ...manifest.packages
        .filter((p) => packages.includes(p.id))
        .map((p) => `${p.name}@${p.version}`),
    ];
    lines.push(
      names.length === 0
        ? "not loaded: nothing (the run loaded everything the analysis found)"
        : `not loaded: ${names.slice(0, 10).join(", ")}${names.length > 10 ? `, and ${names.length - 10} more` : ""} (found by the analysis, kept; the run did not reach them)`,
    );
  }
  if (output) lines.push(`manifest written to ${output}`);
  return lines.join("\n");
}
