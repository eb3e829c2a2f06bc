/**
 * The FIFO policy: the task that has been ready longest runs (the lower id first among those
 * ready since the same tick), and every sleep lasts one tick. It draws nothing.
 */
import type { Policy, Runnable } from '../policy.ts';

export class FifoPolicy implements Policy {
  priority(): number {
    return 0;
  }

  pick(ready: readonly Runnable[]): number {
    let best = 0;
    for (let i = 1; i < ready.length; i++) {
      const t = ready[i]!;
      const b = ready[best]!;
      if (t.readySince < b.readySince || (t.readySince === b.readySince && t.id < b.id)) best = i;
    }
    return best;
  }

  sleep(): number {
    return 1;
  }
}
