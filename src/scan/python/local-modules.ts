// Finds the app's own Python modules on disk the way CPython's path finder does.

import { stat } from "node:fs/promises";
import { join } from "node:path";
import { isNotFound } from "../../core/light.js";

/** A module found under a directory: the files executed to import it, and what it is. */
export interface LocalModule {
  /** `__init__.py` of each package on the way, then the module's own file (absolute). */
  files: string[];
  /** The module's file, or its directory for a namespace package. */
  target: string;
  /** Set when the module is a package (regular or namespace): where its submodules live. */
  packageDir?: string;
  /** A directory without `__init__.py`: a namespace package portion, found only if nothing else is. */
  namespace: boolean;
}

type Kind = "file" | "dir" | null;

/** Caches `stat` answers for one scan; the tree is assumed not to change under it. */
export class LocalModuleFinder {
  readonly #kinds = new Map<string, Promise<Kind>>();

  /**
   * The module `parts` (e.g. `["pkg", "mod"]`) under `dir`, or null. With no parts, `dir` itself
   * as a package (`from . import x`). For each part, a package directory with `__init__.py` wins
   * over `part.py`, which wins over a plain directory (a namespace portion), as in CPython.
   */
  async find(dir: string, parts: string[]): Promise<LocalModule | null> {
    const files: string[] = [];
    let current = dir;
    let namespace = false;
    if (parts.length === 0) {
      if ((await this.#kind(dir)) !== "dir") return null;
      const init = join(dir, "__init__.py");
      const isRegular = (await this.#kind(init)) === "file";
      return {
        files: isRegular ? [init] : [],
        target: isRegular ? init : dir,
        packageDir: dir,
        namespace: !isRegular,
      };
    }
    for (const [i, part] of parts.entries()) {
      const isLast = i === parts.length - 1;
      const pkg = join(current, part);
      const init = join(pkg, "__init__.py");
      const file = `${pkg}.py`;
      const [pkgKind, initKind, fileKind] = await Promise.all([
        this.#kind(pkg),
        this.#kind(init),
        this.#kind(file),
      ]);
      if (pkgKind === "dir" && initKind === "file") {
        files.push(init);
        if (isLast) return { files, target: init, packageDir: pkg, namespace };
        current = pkg;
      } else if (fileKind === "file") {
        if (!isLast) return null;
        files.push(file);
        return { files, target: file, namespace };
      } else if (pkgKind === "dir") {
        namespace ||= i === 0;
        if (isLast) return { files, target: pkg, packageDir: pkg, namespace };
        current = pkg;
      } else {
        return null;
      }
    }
    return null;
  }

  #kind(path: string): Promise<Kind> {
    let kind = this.#kinds.get(path);
    if (!kind) {
      kind = stat(path).then(
        (info) => (info.isFile() ? "file" : info.isDirectory() ? "dir" : null),
        (error: unknown) => {
          if (isNotFound(error)) return null;
          throw error;
        },
      );
      this.#kinds.set(path, kind);
    }
    return kind;
  }
}
