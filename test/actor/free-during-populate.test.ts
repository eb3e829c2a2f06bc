/**
 * The 2.6.36 lock rules at work: while CPU 0's allocation sleeps in populate (holding only
 * pcpu_alloc_mutex), a free from CPU 1 runs to completion, because it needs only pcpu_lock;
 * an allocation from CPU 2 waits for the mutex. The allocator's invariants hold after every
 * step in which pcpu_lock is free.
 */
import { describe, expect, it } from 'vitest';
import { Scheduler } from '../../src/sim/scheduler.ts';
import type { ActorEvent, Reply } from '../../src/sim/events.ts';
import { TaskEnv } from '../../src/sim/task-env.ts';
import { checkAllocator } from '../../src/check/allocator.ts';
import { boot } from '../helpers.ts';

describe('free while an allocation sleeps in populate', () => {
  it('completes the free first, then the allocation, with invariants after every step', () => {
    const env = new TaskEnv();
    const { pc } = boot({ env });
    const events: ActorEvent[] = [];
    const s = new Scheduler(pc, { seed: 9, policy: 'fifo', env, onEvent: (e) => events.push(e) });
    const replies = new Map<string, Reply>();
    const invariants = () => {
      if (s.lockOwners().pcpu_lock === null) expect(checkAllocator(pc)).toEqual([]);
    };

    s.admit({ kind: 'alloc', cpu: 1, size: 64, align: 8 }, (r) => replies.set('old', r));
    s.drain();
    const old = replies.get('old') as { ptr: number };

    s.admit({ kind: 'alloc', cpu: 0, size: 40000, align: 8 }, (r) => replies.set('A', r)); // needs a chunk and pages
    while (!events.some((e) => e.type === 'sleep' && e.at === 'pcpu_populate_chunk')) {
      s.step();
      invariants();
    }
    expect(s.lockOwners()).toEqual({ pcpu_alloc_mutex: 1 + 1, pcpu_lock: null });

    s.admit({ kind: 'free', cpu: 1, ptr: old.ptr }, (r) => replies.set('B', r));
    s.admit({ kind: 'alloc', cpu: 2, size: 8, align: 8 }, (r) => replies.set('C', r));
    const blocked = () => events.some((e) => e.type === 'block' && e.cpu === 2 && e.lock === 'pcpu_alloc_mutex');
    while (!replies.has('B') || !blocked()) {
      s.step();
      invariants();
    }
    expect(replies.has('A')).toBe(false); // A is still asleep in populate

    while (!s.idle) {
      s.step();
      invariants();
    }
    expect(replies.get('A')).toMatchObject({ ok: true, chunk: 1, off: 0 });
    expect(replies.get('C')).toMatchObject({ ok: true, chunk: 0, off: 28192 });
    const order = events.filter((e) => e.type === 'done').map((e) => e.cpu);
    expect(order).toEqual([1, 1, 0, 2]); // old alloc, the free, A, then C
  });
});
