/**
 * The random policy: every ready task is equally likely to run, and a sleep lasts a uniform
 * number of ticks between the bounds.
 */
import type { Prng } from '../../util/prng.ts';
import { type Policy, type Runnable, type SleepBounds, sleepBounds } from '../policy.ts';

export class RandomPolicy implements Policy {
  private readonly min: number;
  private readonly max: number;

  constructor(
    private readonly prng: Prng,
    bounds: SleepBounds = {},
  ) {
    ({ min: this.min, max: this.max } = sleepBounds(bounds));
  }

  priority(): number {
    return 0;
  }

  pick(ready: readonly Runnable[]): number {
    // reservoir sampling, one draw per task after the first: uniform among the ready
    let best = 0;
    for (let n = 2; n <= ready.length; n++) if (this.prng.int(1, n) === 1) best = n - 1;
    return best;
  }

  sleep(): number {
    return this.prng.int(this.min, this.max);
  }
}
