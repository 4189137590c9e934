// The Conda packer's public pieces: planning a Conda bundle, conda-pack delegation, and where relocation lives.

export {
  planCondaBundle,
  RELOCATE_JSON_PATH,
  RELOCATE_SCRIPT_PATH,
  UNMANAGED_PLACEHOLDER,
} from "./plan-conda-bundle.js";
export type {
  CondaBundleEntry,
  CondaBundlePlan,
  CondaRelocation,
  PlanCondaBundleOptions,
  RelocationFile,
} from "./plan-conda-bundle.js";
export { packCondaWithCondaPack } from "./pack-with-conda-pack.js";
export type {
  CondaPackPlan,
  PackCondaWithCondaPackOptions,
} from "./pack-with-conda-pack.js";
