/**
 * Where the scheduler may preempt a task. At 'sleep' a path runs from one sleeping point to
 * the next in one piece; at 'lock' another task can run in the gap between a release and the
 * next acquire even when nothing sleeps there; at 'access' also at every watchpoint.
 */
import { describe, expect, it } from 'vitest';
import type { Granularity } from '../../src/sim/run-queue.ts';
import { Scheduler } from '../../src/sim/scheduler.ts';
import type { ActorEvent } from '../../src/sim/events.ts';
import { TaskEnv } from '../../src/sim/task-env.ts';
import { alloc, boot } from '../helpers.ts';

function twoFrees(granularity: Granularity): string[] {
  const env = new TaskEnv({ watchpoints: granularity === 'access' });
  const { pc } = boot({ env });
  const a = alloc(pc, 16, 8).ptr;
  const b = alloc(pc, 16, 8).ptr;
  const events: ActorEvent[] = [];
  const s = new Scheduler(pc, { seed: 1, policy: 'fifo', granularity, env, onEvent: (e) => events.push(e) });
  s.admit({ kind: 'free', cpu: 0, ptr: a }, () => {});
  s.admit({ kind: 'free', cpu: 1, ptr: b }, () => {});
  s.drain();
  return events
    .filter((e) => e.type === 'lock' || e.type === 'unlock' || e.type === 'done' || e.type === 'preempt')
    .map((e) => `${e.task} ${e.type}${'lock' in e ? ` ${e.lock}` : ''}${'at' in e ? ` ${e.at}` : ''}`);
}

describe('scheduler granularity', () => {
  it("at 'sleep', a free that never sleeps runs in one piece", () => {
    expect(twoFrees('sleep')).toEqual([
      '1 lock pcpu_lock',
      '1 unlock pcpu_lock',
      '1 done',
      '2 lock pcpu_lock',
      '2 unlock pcpu_lock',
      '2 done',
    ]);
  });

  it("at 'lock', the other task runs before the acquire and after the release", () => {
    expect(twoFrees('lock')).toEqual([
      '1 preempt before pcpu_lock',
      '2 preempt before pcpu_lock',
      '1 lock pcpu_lock',
      '1 unlock pcpu_lock',
      '1 preempt after pcpu_lock',
      '2 lock pcpu_lock',
      '2 unlock pcpu_lock',
      '2 preempt after pcpu_lock',
      '1 done',
      '2 done',
    ]);
  });

  it("at 'access', also at each watchpoint inside the critical section, where the other task waits for the lock", () => {
    const order = twoFrees('access');
    expect(order.filter((l) => l.startsWith('1 preempt free_percpu')).length).toBe(3);
    // task 2 cannot get in while task 1 holds pcpu_lock: their critical sections do not interleave
    const held = order.indexOf('1 lock pcpu_lock');
    expect(order.slice(held, order.indexOf('1 unlock pcpu_lock')).some((l) => l.startsWith('2 lock'))).toBe(false);
  });
});
