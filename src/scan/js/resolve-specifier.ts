// Resolves one specifier from one file the way Node does, with TypeScript's additions (oxc-resolver).

import { isBuiltin } from "node:module";
import { ResolverFactory, type NapiResolveOptions } from "oxc-resolver";
import type { UnresolvedReason } from "../../core/light.js";
import { JS_EXTENSIONS } from "../scan-result.js";

/** Where a specifier leads. Paths are absolute and symlink-free. */
export type Resolution =
  | { type: "builtin"; name: string }
  | { type: "file"; path: string }
  | { type: "unresolved"; reason: UnresolvedReason; message: string };

// `.d.ts` last: `import { T } from "./types"` of a declaration-only module is erased by tsc, not a miss.
const EXTENSIONS = [...JS_EXTENSIONS, ".json", ".node", ".d.ts"];

/**
 * Two resolvers sharing one cache: `import` uses the `node`, `import`, `default` export
 * conditions, `require` uses `node`, `require`, `default`. Both follow tsconfig `paths` and
 * `baseUrl` (nearest tsconfig.json per file), package `exports`/`imports`, self-references and
 * symlinks (to real paths, so pnpm's layout and workspace links resolve as Node resolves them).
 */
export class SpecifierResolver {
  readonly #esm: ResolverFactory;
  readonly #cjs: ResolverFactory;

  constructor() {
    const base: NapiResolveOptions = {
      tsconfig: "auto",
      extensions: EXTENSIONS,
      // TypeScript sources import their siblings by the emitted name.
      extensionAlias: {
        ".js": [".ts", ".tsx", ".js", ".jsx"],
        ".mjs": [".mts", ".mjs"],
        ".cjs": [".cts", ".cjs"],
      },
      mainFields: ["main"],
      symlinks: true,
      nodePath: false,
      builtinModules: false,
    };
    this.#esm = new ResolverFactory({
      ...base,
      conditionNames: ["node", "import", "default"],
    });
    this.#cjs = this.#esm.cloneWithOptions({
      ...base,
      conditionNames: ["node", "require", "default"],
    });
  }

  /** Resolves `specifier` as written in `fromFile`; `require` selects the CommonJS conditions. */
  resolve(fromFile: string, specifier: string, require: boolean): Resolution {
    if (isBuiltin(specifier))
      return { type: "builtin", name: specifier.replace(/^node:/, "") };
    const result = (require ? this.#cjs : this.#esm).resolveFileSync(
      fromFile,
      specifier,
    );
    if (result.path !== undefined) return { type: "file", path: result.path };
    const message = result.error ?? "not found";
    return {
      type: "unresolved",
      reason: reasonOf(specifier, message),
      message,
    };
  }
}

function reasonOf(specifier: string, message: string): UnresolvedReason {
  if (/not exported|exports field|imports field|not defined/i.test(message))
    return "exports-mismatch";
  if (
    specifier.startsWith(".") ||
    specifier.startsWith("/") ||
    specifier.startsWith("#")
  )
    return "file-not-found";
  return "not-installed";
}

/** The package name a bare specifier names (`@scope/name/sub` → `@scope/name`), or null. */
export function packageNameOf(specifier: string): string | null {
  if (
    specifier.startsWith(".") ||
    specifier.startsWith("/") ||
    specifier.startsWith("#") ||
    specifier === ""
  ) {
    return null;
  }
  const parts = specifier.split("/");
  if (specifier.startsWith("@"))
    return parts.length >= 2 && parts[1] ? `${parts[0]}/${parts[1]}` : null;
  return parts[0] ?? null;
}
