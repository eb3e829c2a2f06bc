/**
 * PCT, probabilistic concurrency testing: Burckhardt, Kothari, Musuvathi and Nagarakatte, "A
 * Randomized Scheduler with Probabilistic Guarantees of Finding Bugs", ASPLOS 2010.
 *
 * Every task gets a random priority as it is admitted and the ready task of highest priority
 * runs. Before the run, depth - 1 change points are drawn among the first `horizon` ticks; at
 * each, the task that would run next drops below every priority handed out so far. In the
 * paper, a run of n threads and k steps then hits a bug of depth d (d ordering constraints)
 * with probability at least 1/(n k^(d-1)), where uniform choices rarely line up.
 *
 * Where this differs from the paper: tasks arrive during the run, so initial priorities are
 * independent random draws rather than a permutation of the n threads; steps are ticks, and
 * the horizon is a guess at the run's length (the paper's k); the i-th change point gives
 * the lowest priority so far, where the paper gives i. Sleeps last a uniform number of ticks
 * between the bounds, as under the random policy.
 */
import type { Prng } from '../../util/prng.ts';
import { type Policy, type Runnable, type SleepBounds, sleepBounds } from '../policy.ts';

export interface PctOptions extends SleepBounds {
  /** the bug depth aimed at: depth - 1 change points (default 3) */
  pctDepth?: number;
  /** the run length, in ticks, over which change points are spread (default 2000) */
  pctHorizon?: number;
}

export class PctPolicy implements Policy {
  private readonly min: number;
  private readonly max: number;
  /** ticks in [1, horizon]; fewer than depth - 1 when two draws coincide; drawn once, here */
  private readonly changePoints = new Set<number>();
  /**
   * The priority the last change point gave (0 before the first). Strictly decreasing and
   * never positive, while initial priorities are in [1, 2^32]: a task lowered at a change
   * point ranks below every task that never was, and below every task lowered before it.
   */
  private lowPriority = 0;

  constructor(
    private readonly prng: Prng,
    opts: PctOptions = {},
  ) {
    ({ min: this.min, max: this.max } = sleepBounds(opts));
    const horizon = opts.pctHorizon ?? 2000;
    for (let i = 0; i < (opts.pctDepth ?? 3) - 1; i++) this.changePoints.add(this.prng.int(1, horizon));
  }

  priority(): number {
    return this.prng.u32() + 1;
  }

  startTick(now: number, ready: readonly Runnable[]): void {
    if (!this.changePoints.has(now) || !ready.length) return;
    ready[this.pick(ready)]!.priority = --this.lowPriority;
  }

  pick(ready: readonly Runnable[]): number {
    // the highest priority; the earliest admitted among equals
    let best = 0;
    for (let i = 1; i < ready.length; i++) if (ready[i]!.priority > ready[best]!.priority) best = i;
    return best;
  }

  sleep(): number {
    return this.prng.int(this.min, this.max);
  }
}
