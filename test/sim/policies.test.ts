/**
 * The scheduling policies, each on its own: what it picks among ready tasks, how long a sleep
 * lasts, what priority a task starts with, and exactly which PRNG draws that costs (a run is
 * a pure function of its seed only while the draws stay in order).
 */
import { describe, expect, it } from 'vitest';
import { ChoicePolicy } from '../../src/sim/policies/choice.ts';
import { FifoPolicy } from '../../src/sim/policies/fifo.ts';
import { PctPolicy } from '../../src/sim/policies/pct.ts';
import { PosPolicy } from '../../src/sim/policies/pos.ts';
import { RandomPolicy } from '../../src/sim/policies/random.ts';
import type { Runnable } from '../../src/sim/policy.ts';
import { Prng } from '../../src/util/prng.ts';

const task = (id: number, readySince = 0, priority = 0): Runnable => ({ id, readySince, priority });

describe('fifo', () => {
  it('runs the task ready longest, the lower id among equals, and sleeps one tick', () => {
    const p = new FifoPolicy();
    expect(p.pick([task(1, 5), task(2, 3), task(3, 3), task(4, 4)])).toBe(1);
    expect(p.pick([task(7, 2), task(3, 2)])).toBe(1);
    expect(p.priority()).toBe(0);
    expect(p.sleep()).toBe(1);
  });
});

describe('random', () => {
  it('samples the reservoir: one draw per ready task after the first', () => {
    const ref = new Prng(11);
    const p = new RandomPolicy(new Prng(11), { minDelay: 2, maxDelay: 5 });
    const ready = [task(1), task(2), task(3), task(4)];
    for (let round = 0; round < 20; round++) {
      let want = 0;
      for (let n = 2; n <= ready.length; n++) if (ref.int(1, n) === 1) want = n - 1;
      expect(p.pick(ready)).toBe(want);
    }
    // a lone task costs no draw: the next sleep is the reference's next draw
    expect(p.pick([task(9)])).toBe(0);
    expect(p.sleep()).toBe(ref.int(2, 5));
  });

  it('keeps its sleep bounds sane: at least one tick, min at most max', () => {
    const a = new RandomPolicy(new Prng(1), { minDelay: 9, maxDelay: 3 });
    const b = new RandomPolicy(new Prng(1), { maxDelay: 0 });
    for (let i = 0; i < 50; i++) {
      expect(a.sleep()).toBe(3);
      expect(b.sleep()).toBe(1);
    }
  });
});

describe('pct', () => {
  it('draws its change points first, then a priority per task, and runs the highest', () => {
    const ref = new Prng(5);
    const points = [ref.int(1, 50), ref.int(1, 50), ref.int(1, 50)];
    const p = new PctPolicy(new Prng(5), { pctDepth: 4, pctHorizon: 50 });
    const prios = [p.priority(), p.priority(), p.priority()];
    expect(prios).toEqual([ref.u32() + 1, ref.u32() + 1, ref.u32() + 1]);
    const ready = prios.map((pr, i) => task(i + 1, 0, pr));
    const top = prios.indexOf(Math.max(...prios));
    expect(p.pick(ready)).toBe(top);
    // off a change point nothing moves
    const quiet = [...Array(51).keys()].find((t) => t > 0 && !points.includes(t))!;
    p.startTick(quiet, ready);
    expect(ready.map((t) => t.priority)).toEqual(prios);
  });

  it('at a change point the task that would run drops below all, each later one lower still', () => {
    // depth 2 over a horizon of 1 tick: the one change point is tick 1
    const p = new PctPolicy(new Prng(3), { pctDepth: 2, pctHorizon: 1 });
    const ready = [task(1, 0, 10), task(2, 0, 30), task(3, 0, 20)];
    p.startTick(1, ready);
    expect(ready.map((t) => t.priority)).toEqual([10, -1, 20]);
    expect(p.pick(ready)).toBe(2);
    p.startTick(2, ready);
    expect(ready.map((t) => t.priority)).toEqual([10, -1, 20]);
    // equal priorities: the earliest admitted
    expect(p.pick([task(4, 0, 7), task(5, 0, 7)])).toBe(0);
  });

  it('with nothing ready a change point passes unused', () => {
    const p = new PctPolicy(new Prng(3), { pctDepth: 2, pctHorizon: 1 });
    p.startTick(1, []);
    const ready = [task(1, 0, 5)];
    p.startTick(2, ready);
    expect(ready[0]!.priority).toBe(5);
  });
});

describe('pos', () => {
  it('runs the highest priority; after a step, redraws the ran task and the ready ones whose next step conflicts, in admission order', () => {
    const ref = new Prng(9);
    const p = new PosPolicy(new Prng(9), { minDelay: 1, maxDelay: 3 });
    expect([p.priority(), p.priority()]).toEqual([ref.u32() + 1, ref.u32() + 1]);
    const ran: Runnable = { ...task(1, 0, 50) };
    // waits to take the lock the step used
    const locker: Runnable = { ...task(2, 0, 40), pending: { t: 'lock', lock: 'pcpu_lock' } };
    // its last step read the map the step wrote
    const reader: Runnable = {
      ...task(3, 0, 30),
      last: { locks: new Set(), objects: new Map([['map:4:-1', false]]) },
    };
    // holds the mutex, read the slots: neither conflicts with this step
    const apart: Runnable = {
      ...task(4, 0, 20),
      held: ['pcpu_alloc_mutex'],
      last: { locks: new Set(), objects: new Map([['slots:0:-1', false]]) },
    };
    const ready = [ran, locker, reader, apart];
    expect(p.pick(ready)).toBe(0);
    p.stepped(ran, { locks: new Set(['pcpu_lock']), objects: new Map([['map:4:-1', true]]) }, ready);
    expect(ready.map((t) => t.priority)).toEqual([ref.u32() + 1, ref.u32() + 1, ref.u32() + 1, 20]);
    // two reads of one object do not conflict; a task that is no longer ready still gets a fresh priority
    const done: Runnable = { ...task(5, 0, 60) };
    p.stepped(done, { locks: new Set(), objects: new Map([['slots:0:-1', false]]) }, [apart]);
    expect([done.priority, apart.priority]).toEqual([ref.u32() + 1, 20]);
    expect(p.sleep()).toBe(ref.int(1, 3));
  });
});

describe('choice', () => {
  it('asks only when there is a choice, with the ids, and runs the first on a wrong answer', () => {
    const asked: number[][] = [];
    const answers = [1, 7, -1];
    const p = new ChoicePolicy((ids) => (asked.push([...ids]), answers.shift()!));
    expect(p.pick([task(4)])).toBe(0);
    expect(p.pick([task(2), task(5)])).toBe(1);
    expect(p.pick([task(2), task(5), task(6)])).toBe(0);
    expect(p.pick([task(3), task(8)])).toBe(0);
    expect(asked).toEqual([
      [2, 5],
      [2, 5, 6],
      [3, 8],
    ]);
    expect(p.sleep()).toBe(1);
  });
});
