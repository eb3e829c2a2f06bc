/**
 * The reference checker: every run held against the 2.6.36 model, operation by operation.
 * Each bug below keeps the allocator safe (aligned, disjoint, zeroed areas, no BUG) and only
 * changes what it does; a default stress run names the operation where behaviour parted.
 * The kernel's own asserts cannot see any of them.
 */
import { describe, expect, it } from 'vitest';
import { Simulation, simulationConfig } from '../../src/harness/simulation.ts';
import type { SeededBugName } from '../../src/kernel/mutants.ts';
import type { ActorEvent } from '../../src/sim/events.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';

/** The first seed from `from` whose default stress run finds a violation, with it. */
async function firstFinding(bug: SeededBugName, seeds: number[]) {
  for (const seed of seeds) {
    const r = await runStress({ ...DEFAULT_STRESS, seed }, { bugs: [bug] });
    if (r.violations.length) return { seed, v: r.violations[0]! };
  }
  return null;
}

describe('behaviour held against 2.6.36', () => {
  it('is silent on the allocator as it is, both backends, one to four nodes', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const r = await runStress({ ...DEFAULT_STRESS, seed, args: { ...DEFAULT_STRESS.args, ops: 600 } });
      expect(r.violations, `seed ${seed}`).toEqual([]);
    }
  });

  it('asks for exactly one unit at the end of a run, and frees it', async () => {
    const r = await runStress(
      { ...DEFAULT_STRESS, seed: 2, args: { ...DEFAULT_STRESS.args, ops: 300 } },
      { keepLog: true },
    );
    expect(r.verdict).toBe('clean');
    const whole = r.log.find((e) => e.type === 'arrive' && e.req.kind === 'alloc' && e.req.size === 65536)!;
    const done = r.log.find((e) => e.type === 'done' && e.task === whole.task);
    expect(done && done.type === 'done' && done.reply).toMatchObject({ ok: true, off: 0, size: 65536 });
  });

  it.each([
    [
      'relocate-wrong-end',
      'placement',
      /^pcpu_alloc\(size=\d+, align=\d+\) on CPU \d: 2\.6\.36 takes chunk \d+ at offset \d+ \(slot/,
    ],
    [
      'walk-slot-too-high',
      'placement',
      /^pcpu_alloc\(size=\d+, align=\d+.*: 2\.6\.36 takes chunk \d+ at offset \d+ \(slot \d+, the first chunk on the walk from slot \d+/,
    ],
    ['dynamic-from-reserved', 'placement', /the allocator took the reserved chunk at offset \d+$/],
  ] as const)('%s is caught as a %s divergence', async (bug, kind, message) => {
    const found = await firstFinding(bug, [1, 2, 3, 4]);
    expect(found).not.toBeNull();
    expect(found!.v).toMatchObject({ checker: 'reference', kind });
    expect(found!.v.message).toMatch(message);
  });

  it("pages from node 0 for every unit are caught on a NUMA machine by the page's node", async () => {
    // seed 2: percpu-vm on two nodes
    const r = await runStress({ ...DEFAULT_STRESS, seed: 2 }, { bugs: ['pages-from-node-0'] });
    expect(r.violations[0]).toMatchObject({ checker: 'reference', kind: 'node' });
    expect(r.violations[0]!.message).toMatch(
      /^page \d+ of chunk \d+, cpu \d's unit: 2\.6\.36 takes it from node 1 \(alloc_pages_node\(cpu_to_node\(\d\)\)\); this allocator took it from node 0$/,
    );
  });

  it('pcpu_lock handed to a later waiter than the oldest is a ticket-lock divergence', () => {
    const sim = new Simulation(simulationConfig({ seed: 1, cpus: 2 }));
    const ref = sim.checkers!.reference!;
    let seq = 1000;
    const ev = (e: Record<string, unknown>) => ref.observe({ seq: seq++, tick: 5, cpu: 0, ...e } as ActorEvent);
    ev({ type: 'lock', task: 10, lock: 'pcpu_lock' });
    ev({ type: 'block', task: 11, cpu: 1, lock: 'pcpu_lock', owner: 10 });
    ev({ type: 'block', task: 12, lock: 'pcpu_lock', owner: 10 });
    ev({ type: 'unlock', task: 10, lock: 'pcpu_lock' });
    expect(ref.violations).toEqual([]);
    ev({ type: 'lock', task: 12, lock: 'pcpu_lock' });
    expect(ref.violations).toEqual([
      {
        checker: 'reference',
        kind: 'lock-handover',
        cpu: 0,
        tick: 5,
        message:
          'pcpu_lock is a ticket spinlock in 2.6.36, handed over in arrival order: task 11 has waited longest, but task 12 got it',
      },
    ]);
  });

  it("a reply whose failure reason is not 2.6.36's is a failure divergence", () => {
    const sim = new Simulation(simulationConfig({ seed: 1, cpus: 2 }));
    const ref = sim.checkers!.reference!;
    let seq = 1000;
    const ev = (e: Record<string, unknown>) => ref.observe({ seq: seq++, tick: 7, cpu: 1, ...e } as ActorEvent);
    const reason = 'illegal size (99999) or align (8) for percpu allocation';
    ev({ type: 'arrive', task: 50, req: { kind: 'alloc', cpu: 1, size: 99999, align: 8 } });
    ev({
      type: 'kernel',
      task: 50,
      trace: { op: 'walk', size: 99999, align: 8, reserved: false, outcome: 'fail', reason },
    });
    ev({ type: 'done', task: 50, kind: 'alloc', reply: { ok: false, error: 'too big' } });
    expect(ref.violations.map((v) => [v.kind, v.message])).toEqual([
      ['failure', `the reply to CPU 1's allocation says "too big": 2.6.36's pcpu_alloc() fails it with "${reason}"`],
    ]);
  });

  it('percpu_init_late() that leaves the reserved chunk on its __initdata map is a lifecycle divergence', () => {
    const sim = new Simulation(simulationConfig({ seed: 1, cpus: 2 }));
    const ref = sim.checkers!.reference!;
    let seq = 1000;
    const ev = (e: Record<string, unknown>) => ref.observe({ seq: seq++, tick: 3, cpu: 0, ...e } as ActorEvent);
    ev({ type: 'lifecycle', task: -1, state: 'slabOnline' });
    ev({ type: 'kernel', task: 1, trace: { op: 'init-late', early: [-1] } });
    expect(ref.violations.map((v) => [v.kind, v.message])).toEqual([
      [
        'lifecycle',
        'percpu_init_late(): 2.6.36 moves the first chunk and the reserved chunk off their __initdata maps (memory freed after boot); the allocator left the reserved chunk on an early map',
      ],
    ]);
  });
});
