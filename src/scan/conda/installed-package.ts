// An installed Python package as the prefix reader and the dist-info reader both describe it.

import type { CondaPackageEntry } from "../../conda/index.js";

/** A package installed in the prefix, in the manifest's terms: a conda record's or pip's. */
export type InstalledPythonPackage =
  | CondaPackageEntry
  | (Omit<CondaPackageEntry, "manager" | "integritySource"> & {
      /** `id` is `pip:<normalised name>`, `path` the dist-info directory. */
      manager: "pip";
      integritySource: "record" | "none";
    });
