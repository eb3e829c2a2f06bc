/**
 * The actor's lifecycle: off -> early -> slabOnline -> lateInit -> running -> draining -> shutdown, in
 * the kernel's order. Every state answers every request: allowed ones are served, the rest
 * get a typed refusal that says why.
 */
import { describe, expect, it } from 'vitest';
import { AllocatorActor } from '../../src/actor/allocator-actor.ts';
import { eventLoopClock, ManualClock } from '../../src/actor/clock.ts';
import { bootMachine } from '../../src/sim/boot.ts';
import type { ActorEvent, Request } from '../../src/sim/events.ts';
import { Scheduler } from '../../src/sim/scheduler.ts';

/** A booted 2-CPU machine with no actor yet. */
const booted = () => bootMachine({ cpus: 2, nodes: 1, backend: 'vm', memoryMiB: 32 });

/** An actor in front of a booted kernel, before it is told that boot happened. */
const fresh = () => {
  const { machine, pc } = booted();
  const events: ActorEvent[] = [];
  const runQueue = new Scheduler(pc, { seed: 1, onEvent: (e) => events.push(e) });
  return Object.assign(new AllocatorActor({ machine, runQueue, clock: eventLoopClock, eager: true }), { events });
};
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
    a.boot();
    expect(a.state).toBe('early');
    const early = await a.request(alloc);
    expect(early).toMatchObject({ ok: true, chunk: 0, off: 28192 });
    expect(await a.request({ kind: 'init_late', cpu: 0 })).toEqual({
      ok: false,
      refused: true,
      error: 'percpu: percpu_init_late before slab is online (mm_init)',
    });
    expect(() => a.boot()).toThrow('percpu: setup_per_cpu_areas called in state early');
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
    expect(states).toEqual(['boot', 'early', 'slabOnline', 'lateInit', 'running', 'draining', 'shutdown']);
  });

  it('is in lateInit while percpu_init_late() is queued, and refuses a second one', () => {
    const { machine, pc } = booted();
    const clock = new ManualClock();
    const a = new AllocatorActor({ machine, runQueue: new Scheduler(pc, { seed: 1 }), clock });
    a.boot();
    a.slabOnline();
    const replies: unknown[] = [];
    a.send({ kind: 'init_late', cpu: 0 }, (r) => replies.push(r));
    expect(a.state).toBe('lateInit');
    a.send({ kind: 'init_late', cpu: 1 }, (r) => replies.push(r));
    expect(replies).toEqual([{ ok: false, refused: true, error: 'percpu: percpu_init_late is already running' }]);
    while (clock.pending) clock.advance();
    expect(a.state).toBe('running');
    expect(replies[1]).toEqual({ ok: true });
  });

  it('answers a kernel BUG with the typed bug as data, and keeps serving', async () => {
    const a = fresh();
    a.boot();
    const r = await a.request(alloc);
    const ptr = 'ptr' in r ? r.ptr : 0;
    expect(await a.request({ kind: 'free', cpu: 1, ptr })).toEqual({ ok: true, freed: 1 });
    const again = await a.request({ kind: 'free', cpu: 1, ptr });
    expect(again).toMatchObject({ ok: false, bug: { name: 'KernelBug', code: 'DOUBLE_FREE' } });
    expect(a.runQueue.lockOwners()).toEqual({ pcpu_alloc_mutex: null, pcpu_lock: null });
    expect(await a.request(alloc)).toMatchObject({ ok: true, off: 28192 });
  });

  it('never drops a request: many at once all get an answer', async () => {
    const a = fresh();
    a.boot();
    a.slabOnline();
    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) => a.request({ kind: 'alloc', cpu: i % 2, size: 1000 + i, align: 8 })),
    );
    expect(replies.every((r) => r.ok)).toBe(true);
    expect(new Set(replies.map((r) => ('ptr' in r ? r.ptr : 0))).size).toBe(60);
  });
});
