/**
 * POS, partial-order sampling: Yuan, Yang and Gu, "Partial Order Aware Concurrency Sampling",
 * CAV 2018.
 *
 * Every task holds a random priority and the ready task of highest priority runs. After a
 * step, the task that ran and every ready task whose next step conflicts with it draw a new
 * priority. A uniform random walk samples the schedules, and so over-samples the partial
 * orders that many schedules share; redrawing only where steps conflict makes the sample of
 * partial orders (the classes of equivalent schedules) much closer to uniform, which the
 * paper proves for its setting and Fray (OOPSLA 2025) found to pay off on real bugs.
 *
 * Where this differs from the paper: a kernel path is a generator, so a task's next step is
 * not known before it runs. It is estimated from what is known: the lock it was preempted
 * before, the locks it holds (its next step runs under them and drops them), and the shared
 * objects its last step touched (a path goes on with the chunk it was working on). Conflict
 * is the explorer's dependence (policy.ts conflicts). Sleeps last a uniform number of ticks
 * between the bounds, as under the random policy.
 */
import type { Prng } from '../../util/prng.ts';
import type { LockName } from '../../kernel/steps.ts';
import { type Footprint, type Policy, type Runnable, type SleepBounds, sleepBounds } from '../policy.ts';

export class PosPolicy implements Policy {
  private readonly min: number;
  private readonly max: number;

  constructor(
    private readonly prng: Prng,
    bounds: SleepBounds = {},
  ) {
    ({ min: this.min, max: this.max } = sleepBounds(bounds));
  }

  priority(): number {
    return this.prng.u32() + 1;
  }

  pick(ready: readonly Runnable[]): number {
    // the highest priority; the earliest admitted among equals
    let best = 0;
    for (let i = 1; i < ready.length; i++) if (ready[i]!.priority > ready[best]!.priority) best = i;
    return best;
  }

  stepped(ran: Runnable, step: Footprint, ready: readonly Runnable[]): void {
    // in admission order, so the draws are a function of the run alone
    for (const t of ready) if (t === ran || nextConflicts(t, step)) t.priority = this.priority();
    if (!ready.includes(ran)) ran.priority = this.priority();
  }

  sleep(): number {
    return this.prng.int(this.min, this.max);
  }
}

/** Whether the next step of `t`, as far as it can be told (see the file comment), conflicts with `step`. */
function nextConflicts(t: Runnable, step: Footprint): boolean {
  if (step.locks.size) {
    const pending = t.pending?.t === 'lock' ? t.pending.lock : null;
    if (pending && step.locks.has(pending)) return true;
    for (const l of t.held ?? []) if (step.locks.has(l as LockName)) return true;
  }
  const last = t.last;
  if (!last || !last.objects.size || !step.objects.size) return false;
  const [small, big] =
    last.objects.size <= step.objects.size ? [last.objects, step.objects] : [step.objects, last.objects];
  for (const [o, w] of small) {
    const v = big.get(o);
    if (v !== undefined && (v || w)) return true;
  }
  return false;
}
