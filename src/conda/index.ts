// The Conda prefix model shared by the scanner and the packer: records, interpreter, pip
// dist-infos, each record's managed files and the editable installs, read one way for both.

export {
  readCondaEnv,
  sharedCondaEnvReader,
  type CondaEnv,
  type CondaEnvReadOptions,
  type CondaEnvReader,
  type CondaMetaRecord,
} from "./conda-env.js";
export { type DistInfo } from "./dist-info.js";
export { environmentDigest, environmentFiles } from "./env-identity.js";
export { readManagedFiles, type ManagedFile } from "./managed-files.js";
export {
  findEditableInstalls,
  type EditableInstall,
} from "./editable-installs.js";
export {
  interpreterPackage,
  recordPackage,
  type CondaPackageEntry,
} from "./record-package.js";
export { isIdentifier, moduleNameOf, normaliseName } from "./module-names.js";
