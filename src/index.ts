// envpack's public library entry: everything exported here is the supported API.

export {
  scan,
  strictFindings,
  envpackVersion,
  type ScanOptions,
} from "./api/index.js";
export {
  EnvpackError,
  UsageError,
  InputError,
  IntegrityError,
  ToolError,
  isEnvpackError,
  computeInputDigest,
  canonicalJson,
  parseManifest,
  manifestSchema,
  MANIFEST_SCHEMA_VERSION,
  type ErrorCode,
  type EnvpackEvent,
  type OnEvent,
  type Manifest,
  type PackageEntry,
  type ImportRecord,
  type UnresolvedEntry,
  type AppFile,
  type Digest,
} from "./core/index.js";
