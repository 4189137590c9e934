// Waiting for concurrent work as a whole: every promise settles before the first failure is thrown.

/**
 * Waits for every promise; the first failure (in the given order) is thrown once none is still
 * running, so that nothing a caller started outlives its error (a temp being written, a link).
 */
export async function settleAll(
  pending: ReadonlyArray<Promise<unknown>>,
): Promise<void> {
  const results = await Promise.allSettled(pending);
  for (const result of results)
    if (result.status === "rejected") throw result.reason;
}
