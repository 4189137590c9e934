// Conda prefix metadata for the Python scanner: installed packages and who owns each module name.

export { readCondaPrefix } from "./read-prefix.js";
export { moduleNameOf, normaliseName } from "./module-names.js";
export type {
  CondaPrefix,
  InstalledPythonPackage,
  ModuleOwner,
} from "./read-prefix.js";
