// JavaScript/TypeScript import scanning (in progress).

import type { ScanResult, ScannerOptions } from "../scan-result.js";

/** Scans JS/TS entries and the packages they reach. */
export async function scanJs(options: ScannerOptions): Promise<ScanResult> {
  throw new Error(`not implemented: ${options.entries.join(" ")}`);
}
