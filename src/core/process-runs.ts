// Whether a process named by its pid still runs: how locks and temp names tell a live writer
// from one that was killed.

/**
 * Whether a process with this pid runs on this machine (one of another user's counts); false for
 * a pid that cannot name a process.
 */
export function processRuns(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
