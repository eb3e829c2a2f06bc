/**
 * Concurrency coverage: what counts as an overlap and as a pair of conflicting accesses seen in
 * one order or both, fed by hand; and a run's table as the stress engine records it.
 */
import { describe, expect, it } from 'vitest';
import {
  CoverageRecorder,
  addCoverage,
  coverageLines,
  emptyCoverage,
  neverOverlapped,
  orderPairs,
} from '../../src/check/coverage.ts';
import type { KernelAccess } from '../../src/kernel/kcsan.ts';
import type { ActorEvent } from '../../src/sim/events.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';

const at = (task: number, cpu: number, where: string, mode: KernelAccess['mode'], kind: KernelAccess['kind'] = 'map') =>
  ({ task, cpu, tick: 0, kind, chunk: null, index: -1, mode, where }) satisfies KernelAccess;
let seq = 0;
const ev = (e: Record<string, unknown>): ActorEvent => ({ seq: ++seq, tick: 0, ...e }) as unknown as ActorEvent;

describe('conflicting accesses', () => {
  it('counts a pair as seen in both orders only once each order was seen, on different CPUs', () => {
    const c = new CoverageRecorder();
    c.access(at(1, 0, 'pcpu_alloc_area', 'write'));
    c.access(at(2, 1, 'free_percpu', 'read'));
    // a second read by the same CPU and function adds no pair; a read on the same CPU as the writer is no conflict
    c.access(at(2, 1, 'free_percpu', 'read'));
    c.access(at(1, 0, 'pcpu_alloc_area', 'read'));
    expect(c.table().orders).toEqual({ 'map pcpu_alloc_area:write>free_percpu:read': 2 });
    expect(orderPairs(c.table())).toEqual({ both: [], one: ['map pcpu_alloc_area:write / free_percpu:read'] });

    // the other order, on another map: CPU 1 reads, then CPU 0 writes
    c.access({ ...at(2, 1, 'free_percpu', 'read'), index: 5 });
    c.access({ ...at(1, 0, 'pcpu_alloc_area', 'write'), index: 5 });
    expect(c.table().orders).toEqual({
      'map free_percpu:read>pcpu_alloc_area:write': 1,
      'map pcpu_alloc_area:write>free_percpu:read': 2,
    });
    expect(orderPairs(c.table())).toEqual({ both: ['map free_percpu:read / pcpu_alloc_area:write'], one: [] });
  });

  it('keeps objects apart: the same functions on two chunks are no pair', () => {
    const c = new CoverageRecorder();
    c.access(at(1, 0, 'pcpu_alloc', 'write', 'slots'));
    c.access({ ...at(2, 1, 'free_percpu', 'write', 'slots'), index: 3 });
    expect(c.table().orders).toEqual({});
  });
});

describe('overlaps and sleep points', () => {
  it('counts a pair when one task runs while another of another CPU is inside its path', () => {
    const c = new CoverageRecorder();
    c.observe(ev({ type: 'arrive', task: 1, cpu: 0, req: { kind: 'alloc', cpu: 0, size: 8, align: 8 } }));
    c.observe(ev({ type: 'arrive', task: 2, cpu: -1, req: { kind: 'reclaim', cpu: -1 } }));
    c.observe(ev({ type: 'run', task: 1, cpu: 0 }));
    c.observe(ev({ type: 'sleep', task: 1, cpu: 0, at: 'pcpu_extend_area_map', chunk: 1, until: 3 }));
    c.observe(ev({ type: 'run', task: 2, cpu: -1 }));
    c.observe(ev({ type: 'block', task: 2, cpu: -1, lock: 'pcpu_alloc_mutex', owner: 1 }));
    c.observe(ev({ type: 'done', task: 1, cpu: 0, kind: 'alloc', reply: { ok: false, error: 'size 64 too big' } }));
    const t = c.table();
    // the sleep came before the reclaim worker had run: not under concurrency
    expect(t.sleeps).toEqual({ pcpu_extend_area_map: [1, 0] });
    expect(t.overlaps).toEqual({ 'pcpu_extend_area_map|pcpu_reclaim': 1 });
    expect(t.contended).toEqual({ 'pcpu_alloc_mutex pcpu_reclaim<pcpu_extend_area_map': 1 });
    expect(t.failures).toEqual({ 'size N too big': 1 });
    expect(neverOverlapped(t)).toContain('pcpu_reclaim never overlapped pcpu_create_chunk');
    expect(neverOverlapped(t)).not.toContain('pcpu_reclaim never overlapped pcpu_extend_area_map');
    expect(neverOverlapped(t)).not.toContain('pcpu_reclaim never overlapped another pcpu_reclaim');
    expect(coverageLines(t, { never: 1 })).toEqual([
      'coverage: 1/43 function pairs overlapped, 1 lock contentions (lock waiter<owner); conflicting accesses: 0 pair(s) seen in both orders, 0 in one order only',
      '  sleep points reached while another CPU was inside the allocator: pcpu_extend_area_map 0/1, pcpu_create_chunk never, pcpu_populate_chunk never, pcpu_depopulate_chunk never, pcpu_destroy_chunk never',
      '  lifecycle states 0/6 (never early, slabOnline, lateInit, running, draining, shutdown); 1 failure reason(s)',
      '  never reached: pcpu_alloc never overlapped another pcpu_alloc; and 41 more pair(s)',
    ]);
  });
});

describe('a run', () => {
  it('records the same table from the same seed, and tables add up count for count', async () => {
    const cfg = { ...DEFAULT_STRESS, seed: 2, args: { ...DEFAULT_STRESS.args, ops: 60 } };
    const a = (await runStress(cfg)).coverage!;
    const b = (await runStress(cfg)).coverage!;
    expect(b).toEqual(a);
    expect(a.states).toEqual({ boot: 1, early: 1, lateInit: 1, running: 1, slabOnline: 1 });
    expect(Object.keys(a.overlaps).length).toBeGreaterThan(3);
    expect(orderPairs(a).both.length).toBeGreaterThan(0);
    const twice = addCoverage(a, a);
    expect(addCoverage(emptyCoverage(), a)).toEqual(a);
    expect(twice.overlaps['free_percpu|pcpu_alloc']).toBe(2 * a.overlaps['free_percpu|pcpu_alloc']!);
    expect(twice.sleeps['pcpu_populate_chunk']).toEqual(a.sleeps['pcpu_populate_chunk']!.map((n) => 2 * n));
  }, 60_000);
});
