// Conda prefix metadata for the Python scanner: installed packages and who owns each module name.

export { readCondaPrefix } from "./read-prefix.js";
export type { CondaPrefix, ModuleOwner } from "./read-prefix.js";
export type { InstalledPythonPackage } from "./installed-package.js";
