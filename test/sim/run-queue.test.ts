/**
 * The run queue's mechanism with a policy of the test's own: it asks the policy at every
 * tick with the ready tasks in admission order, runs the one picked, keeps a sleeper off the
 * queue for exactly as long as the policy says, and hands a released lock to its first
 * waiter. The tasks are small scripted paths, not the allocator's.
 */
import { describe, expect, it } from 'vitest';
import type { KStep, KTask } from '../../src/kernel/steps.ts';
import { MUTEX_LOCK, MUTEX_UNLOCK } from '../../src/kernel/steps.ts';
import type { ActorEvent, Reply, Request } from '../../src/sim/events.ts';
import type { Policy, Runnable } from '../../src/sim/policy.ts';
import { RunQueue } from '../../src/sim/run-queue.ts';
import { boot } from '../helpers.ts';

/** Runs the newest ready task; sleeps last 3 ticks; priorities count up from 100. */
class NewestFirst implements Policy {
  readonly seen: string[] = [];
  private next = 100;
  priority(): number {
    return this.next++;
  }
  startTick(now: number, ready: readonly Runnable[]): void {
    this.seen.push(`${now}:${ready.map((t) => `${t.id}/${t.priority}`).join(',')}`);
  }
  pick(ready: readonly Runnable[]): number {
    return ready.length - 1;
  }
  sleep(): number {
    return 3;
  }
}

/** Every request runs the same script: the mutex, a sleep under it, the release. */
class Scripted extends RunQueue {
  protected *path(_req: Request): KTask<Reply> {
    yield MUTEX_LOCK;
    yield { t: 'sleep', at: 'pcpu_populate_chunk', chunk: 1 } satisfies KStep;
    yield MUTEX_UNLOCK;
    return { ok: true };
  }
}

describe('run queue', () => {
  it('asks the policy, sleeps as long as it says, and hands the mutex to the first waiter', () => {
    const { pc } = boot();
    const policy = new NewestFirst();
    const events: ActorEvent[] = [];
    const q = new Scripted(pc, { policy, onEvent: (e) => events.push(e) });
    q.admit({ kind: 'init_late', cpu: 0 }, () => {});
    q.admit({ kind: 'init_late', cpu: 1 }, () => {});
    q.drain();
    expect(policy.seen).toEqual(['1:1/100,2/101', '2:1/100', '3:', '4:', '5:1/100', '6:', '7:', '8:']);
    expect(events.filter((e) => e.type !== 'arrive').map((e) => `${e.tick} ${e.task} ${e.type}`)).toEqual([
      '1 2 run',
      '1 2 lock',
      '1 2 sleep',
      '2 1 run',
      '2 1 block',
      '4 2 wake',
      '4 2 run',
      '4 2 unlock',
      '4 1 lock',
      '4 2 done',
      '5 1 run',
      '5 1 sleep',
      '8 1 wake',
      '8 1 run',
      '8 1 unlock',
      '8 1 done',
    ]);
  });
});
