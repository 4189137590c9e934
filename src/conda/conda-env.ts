// The one model of a Conda prefix that the scanner and the packer both read: its conda-meta
// records, its interpreter and the pip-installed distributions no record manages.

import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  InputError,
  compare,
  isNotFound,
  readCondaRecord,
  type CondaRecord,
} from "../core/index.js";
import { mapLimit, readDistInfos, type DistInfo } from "./dist-info.js";

/** One `conda-meta/<dist>.json` record. */
export interface CondaMetaRecord {
  record: CondaRecord;
  /** The whole record JSON (every key kept). */
  json: Record<string, unknown>;
  /** `conda-meta/<dist>.json`, relative to the prefix. */
  metaPath: string;
}

/** A Conda prefix as read once: what scan and pack both decide from. */
export interface CondaEnv {
  /** The absolute prefix. */
  prefix: string;
  /** Every record, sorted by file name. */
  records: CondaMetaRecord[];
  /** The record named `python`. */
  python: CondaMetaRecord;
  /** `3.11` for 3.11.7. */
  pythonMajorMinor: string;
  /** The python record's conda subdir, e.g. `linux-64` (`unknown` without one). */
  platform: string;
  /** `lib/pythonX.Y/site-packages`. */
  sitePackages: string;
  /** The site-packages dist-infos no record manages (pip-installed), sorted by directory name. */
  distInfos: DistInfo[];
  /**
   * Where answers about this prefix that cost a process (the interpreter's built-in modules) are
   * remembered across processes: the reader's, under a build's cache. None: not kept.
   */
  memoDir?: string | undefined;
}

/** Options of {@link readCondaEnv} and {@link sharedCondaEnvReader}. */
export interface CondaEnvReadOptions {
  /** The cache directory (`<cacheDir>/conda/builtins` becomes the model's `memoDir`). */
  cacheDir?: string | undefined;
}

/**
 * Reads a Conda prefix's metadata: `conda-meta/*.json` and the site-packages `*.dist-info`
 * directories no record lists a file of. Package contents are never read.
 * @throws InputError ENVPACK_INPUT_ENV_NOT_FOUND, ENVPACK_INPUT_ENV_NOT_CONDA,
 *   ENVPACK_INPUT_ENV_NO_PYTHON, ENVPACK_INPUT_ENV_CORRUPT
 */
export async function readCondaEnv(
  prefix: string,
  signal?: AbortSignal,
  options: CondaEnvReadOptions = {},
): Promise<CondaEnv> {
  const absolute = resolve(prefix);
  await requireDirectory(
    absolute,
    "ENVPACK_INPUT_ENV_NOT_FOUND",
    `Conda environment not found: ${absolute}`,
    "Pass --env the prefix of an existing Conda environment (the directory that holds conda-meta/).",
  );
  const metaDir = join(absolute, "conda-meta");
  await requireDirectory(
    metaDir,
    "ENVPACK_INPUT_ENV_NOT_CONDA",
    `${absolute} is not a Conda environment (no conda-meta/)`,
    "Pass --env the prefix of a Conda environment, e.g. $CONDA_PREFIX.",
  );
  const files = (await readdir(metaDir))
    .filter((f) => f.endsWith(".json"))
    .sort(compare);
  const records = await mapLimit(
    files,
    async (file): Promise<CondaMetaRecord> => ({
      ...(await readCondaRecord(join(metaDir, file))),
      metaPath: `conda-meta/${file}`,
    }),
  );
  signal?.throwIfAborted();
  const python = records.find((r) => r.record.name === "python");
  if (python === undefined) {
    throw new InputError(
      "ENVPACK_INPUT_ENV_NO_PYTHON",
      `${absolute} has no python package (no conda-meta record named python)`,
      {
        hint: "Install Python into the environment (`conda install -p PREFIX python`) or pass the environment your app runs in.",
        details: { prefix: absolute },
      },
    );
  }
  const pythonMajorMinor = python.record.version
    .split(".")
    .slice(0, 2)
    .join(".");
  const sitePackages = `lib/python${pythonMajorMinor}/site-packages`;
  // A dist-info any record lists a file of is conda's; the rest are pip's. Thousands of paths
  // are looked at: only a dist-info's name is cut out of one.
  const owned = new Set<string>();
  const site = `${sitePackages}/`;
  for (const { record } of records)
    for (const file of record.files ?? []) {
      if (!file.startsWith(site)) continue;
      const slash = file.indexOf("/", site.length);
      const end = slash < 0 ? file.length : slash;
      if (file.endsWith(".dist-info", end))
        owned.add(file.slice(site.length, end));
    }
  const distInfos = await readDistInfos(absolute, sitePackages, owned);
  signal?.throwIfAborted();
  return {
    prefix: absolute,
    records,
    python,
    pythonMajorMinor,
    platform: python.record.subdir ?? "unknown",
    sitePackages,
    distInfos,
    ...(options.cacheDir === undefined
      ? {}
      : { memoDir: join(options.cacheDir, "conda", "builtins") }),
  };
}

/** Reads a prefix, sharing the read between every caller that asks for it again. */
export type CondaEnvReader = (
  prefix: string,
  signal?: AbortSignal,
) => Promise<CondaEnv>;

/**
 * A reader that reads each prefix at most once (a failed read is not kept): one build's scan
 * and packer then decide from the very same model. Its life is the caller's (one build), so an
 * environment changed later is read afresh by the next.
 */
export function sharedCondaEnvReader(
  options: CondaEnvReadOptions = {},
): CondaEnvReader {
  const reads = new Map<string, Promise<CondaEnv>>();
  return (prefix, signal) => {
    const key = resolve(prefix);
    let read = reads.get(key);
    if (read === undefined) {
      read = readCondaEnv(key, signal, options);
      reads.set(key, read);
      read.then(undefined, () => reads.delete(key));
    }
    return read;
  };
}

async function requireDirectory(
  path: string,
  code: "ENVPACK_INPUT_ENV_NOT_FOUND" | "ENVPACK_INPUT_ENV_NOT_CONDA",
  message: string,
  hint: string,
): Promise<void> {
  try {
    if ((await stat(path)).isDirectory()) return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  throw new InputError(code, message, { hint, details: { path } });
}
