// Conda prefix metadata for the Python scanner: installed packages and who owns each module name.

export { readCondaPrefix, moduleNameOf, normaliseName } from "./read-prefix.js";
export type {
  CondaPrefix,
  InstalledPythonPackage,
  ModuleOwner,
} from "./read-prefix.js";
