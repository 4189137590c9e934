// Top-level Python module names of installed files, and PEP 503 package names.

export { normaliseName } from "../core/index.js";

/**
 * The top-level module a path under a module directory provides: `x/…` (a package directory),
 * `x.py`, `x.cpython-311-x86_64-linux-gnu.so`, `x.abi3.so`, `x.so`, `x.pyd`. Undefined for
 * metadata, caches and `.pth` files.
 */
export function moduleNameOf(rest: string): string | undefined {
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const dir = rest.slice(0, slash);
    return isIdentifier(dir) && dir !== "__pycache__" ? dir : undefined;
  }
  const dot = rest.indexOf(".");
  if (dot <= 0) return undefined;
  const stem = rest.slice(0, dot);
  const ext = rest.slice(rest.lastIndexOf("."));
  const isModule = rest === `${stem}.py` || ext === ".so" || ext === ".pyd";
  return isModule && isIdentifier(stem) ? stem : undefined;
}

export function isIdentifier(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}
