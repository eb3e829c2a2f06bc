/**
 * The lock checker against event sequences that break each 2.6.36 rule, and against the
 * real kernel paths, which keep them.
 */
import { describe, expect, it } from 'vitest';
import type { ActorEvent } from '../../src/sim/events.ts';
import { LockChecker } from '../../src/check/locks.ts';
import { sim } from './sim.ts';

let seq = 0;
const ev = (e: Record<string, unknown>): ActorEvent => ({ seq: ++seq, tick: 1, cpu: 0, task: 1, ...e }) as ActorEvent;
const kinds = (c: LockChecker) => c.violations.map((v) => v.kind);

describe('lock checker', () => {
  it('accepts the real allocator paths: alloc, free, populate, reclaim', async () => {
    const s = sim();
    const c0 = s.cpu(0);
    const a = await c0.alloc_percpu(60000, 8);
    const b = await c0.alloc_percpu(60000, 8);
    await c0.free_percpu(a);
    await c0.free_percpu(b); // two empty chunks: reclaim runs
    expect(s.pc.stats.nr_reclaimed).toBe(1);
    expect(s.locks.violations).toEqual([]);
    // free_percpu schedules the work with pcpu_lock held: the known 2.6.36 dependency
    expect(s.locks.known.map((v) => v.kind)).toEqual(['wakeup-under-spinlock']);
  });

  it('flags sleeping while holding pcpu_lock, and taking the mutex under it', () => {
    const c = new LockChecker();
    c.observe(ev({ type: 'lock', lock: 'pcpu_lock' }));
    c.observe(ev({ type: 'sleep', at: 'pcpu_populate_chunk', chunk: 1, until: 3 }));
    c.observe(ev({ type: 'lock', lock: 'pcpu_alloc_mutex' }));
    expect(kinds(c)).toEqual(['sleep-under-spinlock', 'sleep-without-mutex', 'sleep-under-spinlock']);
    expect(c.violations[0]!.message).toBe('task 1 (cpu 0) sleeps in pcpu_populate_chunk while holding pcpu_lock');
  });

  it('flags creation, population, extension or reclaim outside pcpu_alloc_mutex', () => {
    const c = new LockChecker();
    for (const at of [
      'pcpu_extend_area_map',
      'pcpu_create_chunk',
      'pcpu_populate_chunk',
      'pcpu_depopulate_chunk',
      'pcpu_destroy_chunk',
    ])
      c.observe(ev({ type: 'sleep', at, chunk: 2, until: 5, task: 4, cpu: 1 }));
    expect(c.violations.map((v) => v.message)).toEqual([
      'task 4 (cpu 1) runs pcpu_extend_area_map without pcpu_alloc_mutex',
      'task 4 (cpu 1) runs pcpu_create_chunk without pcpu_alloc_mutex',
      'task 4 (cpu 1) runs pcpu_populate_chunk without pcpu_alloc_mutex',
      'task 4 (cpu 1) runs pcpu_depopulate_chunk without pcpu_alloc_mutex',
      'task 4 (cpu 1) runs pcpu_destroy_chunk without pcpu_alloc_mutex',
    ]);
  });

  it('flags the two locks taken in both orders', () => {
    const c = new LockChecker();
    c.observe(ev({ type: 'lock', lock: 'pcpu_alloc_mutex', task: 1 }));
    c.observe(ev({ type: 'lock', lock: 'pcpu_lock', task: 1 }));
    c.observe(ev({ type: 'done', task: 1, kind: 'alloc', reply: { ok: true } }));
    c.observe(ev({ type: 'lock', lock: 'pcpu_lock', task: 2 }));
    c.observe(ev({ type: 'lock', lock: 'pcpu_alloc_mutex', task: 2 }));
    expect(kinds(c)).toContain('lock-order');
  });

  it('reports lockdep_assert_held misses from the kernel (free-without-lock)', async () => {
    const s = sim({ mutant: 'free-without-lock' });
    const c0 = s.cpu(0);
    await c0.free_percpu(await c0.alloc_percpu(8, 8));
    expect(kinds(s.locks)).toEqual(['not-held', 'not-held']);
    expect(s.locks.violations[0]!.message).toBe(
      'task 3 (cpu 0) in pcpu_free_area without pcpu_lock (lockdep_assert_held)',
    );
  });

  it('treats a wake-up under pcpu_lock as known, or as a violation when strict', () => {
    const known = new LockChecker();
    const strict = new LockChecker({ strict: true });
    const e = ev({ type: 'schedule_work', held: ['pcpu_lock'] });
    known.observe(e);
    strict.observe(e);
    expect([known.violations.length, known.known.length]).toEqual([0, 1]);
    expect(kinds(strict)).toEqual(['wakeup-under-spinlock']);
  });
});
