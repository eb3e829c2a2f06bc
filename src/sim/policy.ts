/**
 * A scheduling policy: the strategy the run queue (run-queue.ts) asks which ready task runs,
 * how long a sleep lasts and what priority a new task starts with. The run queue owns the
 * mechanism (tasks, locks, ticks, preemption points); a policy only decides. Any randomness
 * a policy draws comes from the one seeded PRNG it is given, in the order the run queue asks,
 * so a run stays a pure function of its seed.
 */
import type { KStep, LockName } from '../kernel/steps.ts';

/** The policies by the name configurations, saved runs and the command line use. */
export type PolicyName = 'fifo' | 'random' | 'pct' | 'pos' | 'choice';

/**
 * What one step of a task used: the locks it took, dropped or waited for, and the shared
 * objects it touched (sharedObjectKey, src/kernel/kcsan.ts), true when written. Two steps
 * conflict when they share a lock or an object one of them writes: the relation the race
 * detector and the explorer's dependence (src/explore/execute.ts) use.
 */
export interface Footprint {
  readonly locks: Set<LockName>;
  readonly objects: Map<string, boolean>;
}

/** Whether two footprints conflict (see Footprint); an explorer's step is one too. */
export function conflicts(
  a: { readonly locks: ReadonlySet<string>; readonly objects: ReadonlyMap<string, boolean> },
  b: { readonly locks: ReadonlySet<string>; readonly objects: ReadonlyMap<string, boolean> },
): boolean {
  for (const l of a.locks) if (b.locks.has(l)) return true;
  const [small, big] = a.objects.size <= b.objects.size ? [a, b] : [b, a];
  for (const [o, w] of small.objects) {
    const v = big.objects.get(o);
    if (v !== undefined && (v || w)) return true;
  }
  return false;
}

/** A ready task as a policy sees it. */
export interface Runnable {
  readonly id: number;
  /** the tick at which it last became ready */
  readonly readySince: number;
  /** its rank under a priority policy (higher runs first); a policy may lower it */
  priority: number;
  /** the locks it holds (kept only for a policy that asks for footprints) */
  readonly held?: readonly LockName[];
  /** a lock step it was preempted before: its next step takes that lock */
  readonly pending?: KStep | null;
  /** what its last step used, when the policy asks for footprints */
  readonly last?: Footprint | null;
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
  /**
   * Asked for by a policy that weighs conflicts: after `ran` stepped, what the step used and
   * the tasks ready now (admission order; `ran` among them when it was preempted). With this
   * hook the run queue records every step's footprint, without it none.
   */
  stepped?(ran: Runnable, step: Footprint, ready: readonly Runnable[]): void;
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
