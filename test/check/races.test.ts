/**
 * The data-race detector catches a missing or misplaced lock on every kernel path that
 * touches a shared object, with the kernel's own lockdep_assert_held() calls switched off,
 * and stays silent on the correct code. It learns who holds what from the scheduler's events.
 */
import { describe, expect, it } from 'vitest';
import type { KernelAccess } from '../../src/kernel/kcsan.ts';
import type { ActorEvent, ActorEventBody } from '../../src/sim/events.ts';
import { LockModel } from '../../src/check/lock-model.ts';
import { RaceDetector } from '../../src/check/races.ts';
import { PcpuChunk } from '../../src/kernel/chunk.ts';
import type { KernelPath } from '../../src/kernel/mutants.ts';
import type { LockName } from '../../src/kernel/steps.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';

const quiet = {
  ...DEFAULT_STRESS,
  backend: 'vm' as const,
  nodes: 1,
  lockdep: false,
  count: true,
  args: { ...DEFAULT_STRESS.args, ops: 400 },
};

describe('race detector on the stress engine (kernel asserts off)', () => {
  const cases: [KernelPath, LockName][] = [
    ['pcpu_alloc', 'pcpu_lock'],
    ['pcpu_alloc', 'pcpu_alloc_mutex'],
    ['free_percpu', 'pcpu_lock'],
    ['pcpu_reclaim', 'pcpu_lock'],
    ['pcpu_reclaim', 'pcpu_alloc_mutex'],
    ['pcpu_extend_area_map', 'pcpu_lock'],
    ['percpu_init_late', 'pcpu_lock'],
  ];

  it.each(cases)('%s without %s is a race report', async (path, lock) => {
    const r = await runStress({ ...quiet, seed: 2 }, { bugs: [{ path, how: 'omit', lock }] });
    const races = r.violations.filter((v) => v.checker === 'races');
    expect(races.length).toBeGreaterThan(0);
    expect(r.violations.some((v) => v.checker === 'locks' && v.kind === 'not-held')).toBe(false);
  });

  it.each(cases.filter(([, l]) => l === 'pcpu_lock'))(
    '%s with a gap in %s and no sleep in it is a race report',
    async (path, lock) => {
      const r = await runStress({ ...quiet, seed: 2 }, { bugs: [{ path, how: 'gap', lock }] });
      expect(r.violations.filter((v) => v.checker === 'races').length).toBeGreaterThan(0);
    },
  );

  it('names the object, both accesses, the locks and the rule', async () => {
    const r = await runStress(
      { ...quiet, seed: 2, count: false },
      { bugs: [{ path: 'free_percpu', how: 'omit', lock: 'pcpu_lock' }] },
    );
    expect(r.violations[0]).toMatchObject({ checker: 'races', kind: 'lockset' });
    expect(r.violations[0]!.message).toMatch(
      /^no lock protects chunk 0's area map \(map, map_used, free_size, contig_hint\) \(lockset\): write in pcpu_free_area by task \d+ \(cpu \d\) holding \[\], after accesses that all held \[.*pcpu_lock\] \(the last: .* holding \[.*pcpu_lock\]\); it is protected by pcpu_lock; pcpu_free_area \(task \d+\) ran without pcpu_lock$/,
    );
  });

  it('is silent on the correct code, on both backends and both policies', async () => {
    for (const [seed, policy] of [
      [3, 'random'],
      [4, 'pct'],
      [5, 'random'],
      [6, 'pct'],
    ] as const) {
      const r = await runStress({
        ...DEFAULT_STRESS,
        seed,
        policy,
        lockdep: false,
        args: { ...DEFAULT_STRESS.args, ops: 500 },
      });
      expect(r.violations).toEqual([]);
    }
  });
});

/** A hand-driven detector: events and accesses as the scheduler would give them. */
function detector(opts: { lockset?: boolean } = {}) {
  const model = new LockModel();
  const races = new RaceDetector(model, opts);
  let seq = 0;
  const ev = (body: ActorEventBody): void => {
    const e = { ...body, seq: ++seq, tick: seq } as ActorEvent;
    model.observe(e);
    races.observe(e);
  };
  const chunk = new PcpuChunk(4, new Int32Array(16), 4);
  const touch = (task: number, cpu: number, mode: 'read' | 'write', where = 'f'): void => {
    const a: KernelAccess = { task, cpu, tick: seq, kind: 'map', chunk, index: -1, mode, where };
    races.access(a);
  };
  const arrive = (task: number, cpu: number): void =>
    ev({ type: 'arrive', task, cpu, req: { kind: 'alloc', cpu, size: 8, align: 8 } });
  const lock = (task: number, cpu: number, l: LockName): void => ev({ type: 'lock', task, cpu, lock: l });
  const unlock = (task: number, cpu: number, l: LockName): void => ev({ type: 'unlock', task, cpu, lock: l });
  const done = (task: number, cpu: number): void =>
    ev({ type: 'done', task, cpu, kind: 'alloc', reply: { ok: false, error: 'x' } });
  return { races, model, touch, arrive, lock, unlock, done };
}

describe('race detector by hand', () => {
  it('lets one task build an object without locks (Exclusive), then wants a common lock', () => {
    const d = detector();
    d.arrive(1, 0);
    d.touch(1, 0, 'write', 'pcpu_alloc_chunk'); // built with no lock: fine, nobody else sees it
    d.lock(1, 0, 'pcpu_lock');
    d.touch(1, 0, 'write');
    d.unlock(1, 0, 'pcpu_lock');
    d.done(1, 0);
    d.arrive(2, 1);
    d.lock(2, 1, 'pcpu_lock');
    d.touch(2, 1, 'write');
    d.unlock(2, 1, 'pcpu_lock');
    d.arrive(3, 2);
    d.lock(3, 2, 'pcpu_lock');
    d.touch(3, 2, 'read');
    d.unlock(3, 2, 'pcpu_lock');
    expect(d.races.violations).toEqual([]);
    d.arrive(4, 1);
    d.touch(4, 1, 'write', 'pcpu_free_area'); // no lock at all
    expect(d.races.violations.map((v) => v.kind)).toEqual(['lockset']);
    expect(d.races.violations[0]!.second).toMatchObject({
      task: 4,
      cpu: 1,
      where: 'pcpu_free_area',
      mode: 'write',
      locks: [],
    });
    d.touch(4, 1, 'write'); // reported once per object
    expect(d.races.violations).toHaveLength(1);
  });

  it('orders accesses through a lock release and acquire, and reports unordered ones', () => {
    const d = detector({ lockset: false });
    d.arrive(1, 0);
    d.arrive(2, 1);
    d.lock(1, 0, 'pcpu_alloc_mutex');
    d.touch(1, 0, 'write');
    d.unlock(1, 0, 'pcpu_alloc_mutex');
    d.lock(2, 1, 'pcpu_alloc_mutex');
    d.touch(2, 1, 'write'); // after task 1's release: ordered
    d.unlock(2, 1, 'pcpu_alloc_mutex');
    expect(d.races.violations.filter((v) => v.kind === 'data-race')).toEqual([]);
    d.arrive(3, 2);
    d.lock(3, 2, 'pcpu_lock');
    d.touch(3, 2, 'read'); // under another lock: nothing orders it after task 2's write
    expect(d.races.violations.map((v) => v.kind)).toContain('data-race');
    const v = d.races.violations.find((x) => x.kind === 'data-race')!;
    expect(v.first).toMatchObject({ task: 2, mode: 'write', locks: ['pcpu_alloc_mutex'] });
    expect(v.second).toMatchObject({ task: 3, mode: 'read', locks: ['pcpu_lock'] });
  });

  it("orders a CPU's requests one after another (request -> reply -> next request)", () => {
    const d = detector();
    d.arrive(1, 0);
    d.touch(1, 0, 'write');
    d.done(1, 0);
    d.arrive(2, 0);
    d.touch(2, 0, 'write');
    expect(d.races.violations.filter((v) => v.kind === 'data-race')).toEqual([]);
  });
});

describe('lock model', () => {
  it('blames the scheduler for two owners, a foreign release and a blocked task that runs', () => {
    const m = new LockModel();
    let seq = 0;
    const ev = (body: ActorEventBody): void => m.observe({ ...body, seq: ++seq, tick: seq } as ActorEvent);
    ev({ type: 'lock', task: 1, cpu: 0, lock: 'pcpu_lock' });
    ev({ type: 'block', task: 2, cpu: 1, lock: 'pcpu_lock', owner: 1 });
    ev({ type: 'run', task: 2, cpu: 1 });
    ev({ type: 'lock', task: 3, cpu: 2, lock: 'pcpu_lock' });
    ev({ type: 'unlock', task: 1, cpu: 0, lock: 'pcpu_lock' });
    expect(m.faults.map((f) => f.message)).toEqual([
      'scheduler: task 2 runs while it waits for pcpu_lock, which it was never granted',
      'scheduler: pcpu_lock was granted to task 3 while task 1 still holds it (mutual exclusion broken)',
      'scheduler: task 1 released pcpu_lock, which task 3 holds',
    ]);
    expect(m.holds(3)).toEqual(['pcpu_lock']);
  });

  it("compares its own account with the scheduler's books", () => {
    const books = { lockOwners: () => ({ pcpu_alloc_mutex: null, pcpu_lock: null }), heldBy: () => [] as LockName[] };
    const m = new LockModel(books);
    m.observe({ type: 'lock', task: 5, cpu: 0, lock: 'pcpu_lock', seq: 1, tick: 1 });
    expect(m.faults[0]!.message).toBe(
      'scheduler: its books say task none holds pcpu_lock, its events say task 5 (after event #1 lock)',
    );
  });
});
