// A conda-meta record as a package in the manifest's terms, read one way by the scan (its package
// list) and the build (the interpreter that names the runtime layer before the scan is done).

import { compare, matchSpecName, type CondaRecord } from "../core/index.js";
import type { CondaEnv } from "./conda-env.js";

/** A conda-installed package in the manifest's terms. */
export interface CondaPackageEntry {
  /** `conda:<name>`. */
  id: string;
  manager: "conda";
  name: string;
  version: string;
  build?: string;
  channel?: string;
  /** The conda-meta record, relative to the prefix. */
  path: string;
  integrity: string | null;
  integritySource: "conda-meta" | "none";
  /** Ids of the installed packages it declares it needs (conda `depends`), sorted. */
  dependencies: string[];
}

/**
 * The package of one record at `path` (its conda-meta file); `installed` holds the record names
 * of the prefix, which its `depends` are matched against.
 */
export function recordPackage(
  record: CondaRecord,
  path: string,
  installed: ReadonlySet<string>,
): CondaPackageEntry {
  const dependencies = new Set<string>();
  for (const spec of record.depends ?? []) {
    const name = matchSpecName(spec);
    if (name !== record.name && installed.has(name))
      dependencies.add(`conda:${name}`);
  }
  const integrity = record.sha256
    ? `sha256:${record.sha256}`
    : record.md5
      ? `md5:${record.md5}`
      : null;
  return {
    id: `conda:${record.name}`,
    manager: "conda",
    name: record.name,
    version: record.version,
    ...(record.build === undefined ? {} : { build: record.build }),
    ...(record.channel === undefined ? {} : { channel: record.channel }),
    path,
    integrity,
    integritySource: integrity ? "conda-meta" : "none",
    dependencies: [...dependencies].sort(compare),
  };
}

/** The interpreter's package (`conda:python`), as the scan of any app in the prefix lists it. */
export function interpreterPackage(env: CondaEnv): CondaPackageEntry {
  return recordPackage(
    env.python.record,
    env.python.metaPath,
    new Set(env.records.map((r) => r.record.name)),
  );
}
