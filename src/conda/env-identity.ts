// The identity of a whole Conda prefix as its metadata states it: what a bundle that packs every
// package (not only those the app imports) is keyed by, and the files whose stats vouch for it.

import { join } from "node:path";
import { canonicalJson, digestOf, type Digest } from "../core/index.js";
import type { CondaEnv } from "./conda-env.js";

/**
 * sha256 over every record (its file, name, version, build and package sha256/md5) and every
 * pip-installed dist-info (directory, name, version, RECORD digest). Reads nothing: the prefix
 * model holds it all. A managed file edited in place changes none of these.
 */
export function environmentDigest(env: CondaEnv): Digest {
  return digestOf(
    canonicalJson({
      key: "envpack-conda-environment/1",
      records: env.records.map(({ record, metaPath }) => ({
        metaPath,
        name: record.name,
        version: record.version,
        build: record.build ?? null,
        sha256: record.sha256 ?? null,
        md5: record.md5 ?? null,
      })),
      distInfos: env.distInfos.map((d) => ({
        path: d.path,
        name: d.name ?? null,
        version: d.version ?? null,
        integrity: d.integrity,
      })),
    }),
  );
}

/**
 * The absolute files {@link environmentDigest} is read from: each record, each dist-info's
 * METADATA and RECORD. Their stats change with any edit of them, in place or by rename.
 */
export function environmentFiles(env: CondaEnv): string[] {
  return [
    ...env.records.map((r) => join(env.prefix, ...r.metaPath.split("/"))),
    ...env.distInfos.flatMap((d) =>
      ["METADATA", "RECORD"].map((f) =>
        join(env.prefix, ...d.path.split("/"), f),
      ),
    ),
  ];
}
