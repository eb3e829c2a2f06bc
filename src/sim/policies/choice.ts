/**
 * The choice policy: someone outside decides. An explorer (src/explore/dpor.ts) or the rerun
 * of a schedule it printed is asked which task runs whenever more than one is ready; a lone
 * ready task runs without asking. Sleeps last one tick, so that time adds no choices of its
 * own. It draws nothing.
 */
import type { Policy, Runnable } from '../policy.ts';

/** Picks the index of the task to run among the ready ones, given their ids in ascending order. */
export type Chooser = (ready: readonly number[]) => number;

export class ChoicePolicy implements Policy {
  constructor(private readonly chooser: Chooser) {}

  priority(): number {
    return 0;
  }

  pick(ready: readonly Runnable[]): number {
    if (ready.length === 1) return 0;
    const i = this.chooser(ready.map((t) => t.id));
    // an answer that names no ready task runs the first
    return ready[i] ? i : 0;
  }

  sleep(): number {
    return 1;
  }
}
