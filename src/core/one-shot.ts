// Whether this process runs one command and ends (the CLI) or may run many (a program using the
// library): a one-shot process cannot earn back a JIT warm-up, so where native code and
// JavaScript give the same answer it takes the native code.

/** A global, not module state: a bundled CLI holds more than one copy of this module. */
const ONE_SHOT = Symbol.for("envpack.oneShotProcess");

/** Marks this process as one command's; the CLI calls it before it runs the command. */
export function markOneShotProcess(): void {
  (globalThis as Record<symbol, unknown>)[ONE_SHOT] = true;
}

/** Whether {@link markOneShotProcess} was called in this process. */
export function isOneShotProcess(): boolean {
  return (globalThis as Record<symbol, unknown>)[ONE_SHOT] === true;
}
