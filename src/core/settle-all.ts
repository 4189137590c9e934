// Waiting for concurrent work as a whole: every promise settles before the first failure is thrown.

/**
 * Waits for every promise; the first failure (in the given order) is thrown once none is still
 * running, so that nothing a caller started outlives its error (a temp being written, a link).
 * @returns the values, in the given order
 */
export async function settleAll<T>(
  pending: ReadonlyArray<Promise<T>>,
): Promise<T[]> {
  const results = await Promise.allSettled(pending);
  return results.map((result) => {
    if (result.status === "rejected") throw result.reason;
    return result.value;
  });
}
