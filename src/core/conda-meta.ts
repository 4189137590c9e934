// Pure parsing of Conda prefix metadata shared by the scanner and the packer: conda-meta records, match specs and dist-info text.

import { readFileSync } from "node:fs";
import type { z } from "zod";
import { InputError } from "./errors.js";
import { once, zod } from "./zod.js";

/** The fields of a `conda-meta/<dist>.json` record envpack relies on; unknown keys are dropped. Built on first use. */
const condaRecordSchema = once(() => {
  const z = zod();
  return z.object({
    name: z.string().min(1),
    version: z.string().min(1),
    build: z.string().optional(),
    channel: z.string().optional(),
    subdir: z.string().optional(),
    depends: z.array(z.string()).optional(),
    files: z.array(z.string()).optional(),
    sha256: z.string().optional(),
    md5: z.string().optional(),
  });
});

/** A parsed conda-meta record (see {@link condaRecordSchema}). */
export type CondaRecord = z.infer<ReturnType<typeof condaRecordSchema>>;

/**
 * Reads and validates one conda-meta record.
 * @returns the validated record and the whole parsed JSON object (all keys kept)
 * @throws InputError ENVPACK_INPUT_ENV_CORRUPT when the file is not JSON or not a record
 */
export async function readCondaRecord(
  file: string,
): Promise<{ record: CondaRecord; json: Record<string, unknown> }> {
  // Read synchronously: records are read one after another, and the promise machinery of an
  // async read costs more than a small file's bytes.
  const text = readFileSync(file, "utf8");
  let problem: string;
  try {
    const json: unknown = JSON.parse(text);
    const record = wellFormedRecord(json);
    if (record !== undefined)
      return { record, json: json as Record<string, unknown> };
    const parsed = condaRecordSchema().safeParse(json);
    if (parsed.success)
      return { record: parsed.data, json: json as Record<string, unknown> };
    const issue = parsed.error.issues[0];
    problem = issue
      ? `${issue.path.join(".") || "(root)"}: ${issue.message}`
      : "not a conda-meta record";
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    problem = error.message;
  }
  throw new InputError(
    "ENVPACK_INPUT_ENV_CORRUPT",
    `corrupt conda-meta record ${file}: ${problem}`,
    {
      hint: "Repair or reinstall the package (`conda install --force-reinstall`), or remove the damaged record.",
      details: { file },
    },
  );
}

/** The optional string fields of a record, in the schema's order. */
const RECORD_STRINGS = ["build", "channel", "subdir"] as const;
const RECORD_HASHES = ["sha256", "md5"] as const;
const RECORD_LISTS = ["depends", "files"] as const;

/**
 * What {@link condaRecordSchema} makes of `json` when it is a plain well-formed record (the
 * schema's fields in its order, arrays copied); undefined for anything else, which the schema
 * then decides and words. Checked by hand: loading zod and building the schema cost a cold
 * Conda build tens of milliseconds before its first byte was packed.
 */
function wellFormedRecord(json: unknown): CondaRecord | undefined {
  if (json === null || typeof json !== "object" || Array.isArray(json))
    return undefined;
  const fields = json as Record<string, unknown>;
  const { name, version } = fields;
  if (typeof name !== "string" || name.length === 0) return undefined;
  if (typeof version !== "string" || version.length === 0) return undefined;
  const record: Record<string, unknown> = { name, version };
  for (const key of RECORD_STRINGS) {
    const value = fields[key];
    if (value === undefined) continue;
    if (typeof value !== "string") return undefined;
    record[key] = value;
  }
  for (const key of RECORD_LISTS) {
    const value = fields[key];
    if (value === undefined) continue;
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
      return undefined;
    record[key] = [...(value as string[])];
  }
  for (const key of RECORD_HASHES) {
    const value = fields[key];
    if (value === undefined) continue;
    if (typeof value !== "string") return undefined;
    record[key] = value;
  }
  return record as CondaRecord;
}

/** The package name of a match spec: its first token (`python >=3.9` → `python`, `six` → `six`). */
export function matchSpecName(spec: string): string {
  return spec.trim().split(/\s+/)[0] ?? "";
}

/** PEP 503 name normalisation: lower case, runs of `-_.` become `-`. */
export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** RFC 822-style dist-info METADATA headers (lower-cased names → values), up to the body. */
export function parseDistInfoMetadata(text: string): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  let last: string[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === "") break;
    if ((line.startsWith(" ") || line.startsWith("\t")) && last) {
      last[last.length - 1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const values = headers.get(key) ?? [];
    values.push(line.slice(colon + 1).trim());
    headers.set(key, values);
    last = values;
  }
  return headers;
}

/** The first field (the path) of a dist-info RECORD line, a CSV row; `"…"` is unquoted. */
export function recordLinePath(line: string): string {
  const trimmed = line.replace(/\r$/, "");
  if (!trimmed.startsWith('"')) return trimmed.split(",")[0] ?? "";
  let out = "";
  for (let i = 1; i < trimmed.length; i++) {
    const c = trimmed[i];
    if (c === '"') {
      if (trimmed[i + 1] === '"') {
        out += '"';
        i++;
      } else {
        return out;
      }
    } else {
      out += c;
    }
  }
  return out;
}
