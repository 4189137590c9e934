// An installed Python package as the prefix reader and the dist-info reader both describe it.

/** A package installed in the prefix, in the manifest's terms. */
export interface InstalledPythonPackage {
  /** `conda:<name>` or `pip:<normalised name>`. */
  id: string;
  manager: "conda" | "pip";
  name: string;
  version: string;
  build?: string;
  channel?: string;
  /** The conda-meta record or dist-info directory, relative to the prefix. */
  path: string;
  integrity: string | null;
  integritySource: "conda-meta" | "record" | "none";
  /** Ids of installed packages this one declares it needs (conda `depends`, pip `Requires-Dist`). */
  dependencies: string[];
}
