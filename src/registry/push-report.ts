// The one way a push accounts for a blob, whichever backend: skipped when the registry holds it,
// else sent and its bytes counted.

import type { Digest } from "../core/light.js";
import type { PushReport } from "./registry.js";

/** A report of a push that has moved nothing yet. */
export function emptyPushReport(): PushReport {
  return { sent: [], skipped: [], bytes: 0 };
}

/**
 * Ensures the registry holds blob `digest`: when `isStored()` it is recorded as skipped, else
 * `send()` stores it (resolving to the bytes sent) and it is recorded as sent. Without a report
 * (a blob that is not the bundle's, such as an OCI empty config) nothing is recorded.
 */
export async function pushBlob(
  report: PushReport | undefined,
  digest: Digest,
  steps: { isStored: () => Promise<boolean>; send: () => Promise<number> },
): Promise<void> {
  if (await steps.isStored()) {
    report?.skipped.push(digest);
    return;
  }
  const bytes = await steps.send();
  report?.sent.push(digest);
  if (report !== undefined) report.bytes += bytes;
}
