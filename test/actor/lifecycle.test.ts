/**
 * The actor's lifecycle: off -> early -> slabOnline -> running -> draining -> shutdown, in
 * the kernel's order. Every state answers every request: allowed ones are served, the rest
 * get a typed refusal that says why.
 */
import { describe, expect, it } from 'vitest';
import { AllocatorActor } from '../../src/actor/allocator-actor.ts';
import type { Request } from '../../src/sim/events.ts';
import { Machine } from '../../src/mem/machine.ts';

const fresh = () =>
  new AllocatorActor(new Machine({ cpus: 2, memoryBytes: 32 << 20, shadow: false }), { seed: 1, record: true });
const alloc: Request = { kind: 'alloc', cpu: 1, size: 16, align: 8 };

describe('allocator actor lifecycle', () => {
  it('refuses everything before setup_per_cpu_areas', async () => {
    const a = fresh();
    expect(a.state).toBe('off');
    expect(await a.request(alloc)).toEqual({
      ok: false,
      refused: true,
      error: 'percpu: allocation before setup_per_cpu_areas',
    });
    expect(await a.request({ kind: 'free', cpu: 0, ptr: 123 })).toEqual({
      ok: false,
      refused: true,
      error: 'percpu: free_percpu before setup_per_cpu_areas',
    });
    expect(() => a.slabOnline()).toThrow('percpu: slab online in state off');
  });

  it('walks the states in order, serving what each allows', async () => {
    const a = fresh();
    a.boot({});
    expect(a.state).toBe('early');
    const early = await a.request(alloc);
    expect(early).toMatchObject({ ok: true, chunk: 0, off: 28192 });
    expect(await a.request({ kind: 'init_late', cpu: 0 })).toEqual({
      ok: false,
      refused: true,
      error: 'percpu: percpu_init_late before slab is online (mm_init)',
    });
    expect(() => a.boot({})).toThrow('percpu: setup_per_cpu_areas called in state early');
    a.slabOnline();
    expect(a.state).toBe('slabOnline');
    expect(await a.request({ ...alloc, size: 40000 })).toMatchObject({ ok: true, chunk: 1, off: 0 });
    expect(await a.initLate()).toEqual({ ok: true });
    expect(a.state).toBe('running');
    expect(await a.request({ kind: 'init_late', cpu: 0 })).toEqual({
      ok: false,
      refused: true,
      error: 'percpu: percpu_init_late has already run',
    });
    const report = await a.shutdown();
    expect(a.state).toBe('shutdown');
    expect(report.leaks.map((l) => [l.cpu, l.chunk, l.off])).toEqual([
      [1, 0, 28192],
      [1, 1, 0],
    ]);
    expect(report.pagesRestored).toBe(true);
    expect(await a.request(alloc)).toEqual({ ok: false, refused: true, error: 'percpu: allocation after shutdown' });
    const states = a.events.filter((e) => e.type === 'lifecycle').map((e) => (e.type === 'lifecycle' ? e.state : ''));
    expect(states).toEqual(['boot', 'early', 'slabOnline', 'running', 'draining', 'shutdown']);
  });

  it('answers a kernel BUG with the typed bug as data, and keeps serving', async () => {
    const a = fresh();
    a.boot({});
    const r = await a.request(alloc);
    const ptr = 'ptr' in r ? r.ptr : 0;
    expect(await a.request({ kind: 'free', cpu: 1, ptr })).toEqual({ ok: true, freed: 1 });
    const again = await a.request({ kind: 'free', cpu: 1, ptr });
    expect(again).toMatchObject({ ok: false, bug: { name: 'KernelBug', code: 'DOUBLE_FREE' } });
    expect(a.core.lockOwners()).toEqual({ pcpu_alloc_mutex: null, pcpu_lock: null });
    expect(await a.request(alloc)).toMatchObject({ ok: true, off: 28192 });
  });

  it('never drops a request: many at once all get an answer', async () => {
    const a = fresh();
    a.boot({});
    a.slabOnline();
    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) => a.request({ kind: 'alloc', cpu: i % 2, size: 1000 + i, align: 8 })),
    );
    expect(replies.every((r) => r.ok)).toBe(true);
    expect(new Set(replies.map((r) => ('ptr' in r ? r.ptr : 0))).size).toBe(60);
  });
});
