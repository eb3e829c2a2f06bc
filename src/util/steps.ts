/**
 * Long loops over a trace written as generators that yield how far they are now and then, so
 * that one caller runs them through at once and another (a command) gives the event loop a
 * turn at each yield: for progress, and for a signal handler to run.
 */

/** Runs a stepped computation to its end; returns its value. */
export function finish<T>(g: Generator<number, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/** How many lines or operations a stepped loop does between yields. */
export const STEP = 1 << 16;
