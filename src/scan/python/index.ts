// Python import scanning against a Conda prefix (in progress).

import { InputError } from "../../core/index.js";
import type { ScanResult, ScannerOptions } from "../scan-result.js";

/** Options of {@link scanPython}: entries plus the absolute Conda prefix. */
export interface PythonScanOptions extends ScannerOptions {
  prefix: string;
}

/** Scans Python entries against a Conda prefix. */
export async function scanPython(options: PythonScanOptions): Promise<ScanResult> {
  throw new InputError("ENVPACK_INPUT_ENTRY_UNSUPPORTED", `Python scanning is not implemented yet (${options.entries[0]})`);
}
