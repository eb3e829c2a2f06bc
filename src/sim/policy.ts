/**
 * A scheduling policy: the strategy the run queue (run-queue.ts) asks which ready task runs,
 * how long a sleep lasts and what priority a new task starts with. The run queue owns the
 * mechanism (tasks, locks, ticks, preemption points); a policy only decides. Any randomness
 * a policy draws comes from the one seeded PRNG it is given, in the order the run queue asks,
 * so a run stays a pure function of its seed.
 */

/** The policies by the name configurations, saved runs and the command line use. */
export type PolicyName = 'fifo' | 'random' | 'pct' | 'choice';

/** A ready task as a policy sees it. */
export interface Runnable {
  readonly id: number;
  /** the tick at which it last became ready */
  readonly readySince: number;
  /** its rank under a priority policy (higher runs first); a policy may lower it */
  priority: number;
}

export interface Policy {
  /** The priority a task starts with, asked once as it is admitted. */
  priority(): number;
  /**
   * The start of tick `now`, before due sleepers wake, with the tasks ready at that moment
   * (admission order, possibly none).
   */
  startTick?(now: number, ready: readonly Runnable[]): void;
  /** Which task runs: an index into `ready` (at least one task, in admission order). */
  pick(ready: readonly Runnable[]): number;
  /** How many ticks a sleep lasts (at least 1). */
  sleep(): number;
}

/** The bounds of a randomly drawn sleep, as the options give them. */
export interface SleepBounds {
  /** the shortest a sleeping step lasts, in ticks (default 1) */
  minDelay?: number;
  /** the longest a sleeping step lasts, in ticks (at least 1, default 4) */
  maxDelay?: number;
}

/** The bounds made sane: 1 <= min <= max. */
export function sleepBounds(b: SleepBounds): { min: number; max: number } {
  const max = Math.max(1, b.maxDelay ?? 4);
  return { min: Math.min(max, Math.max(1, b.minDelay ?? 1)), max };
}
