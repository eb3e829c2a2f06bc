/**
 * The reference checker: every run held against the 2.6.36 model, operation by operation.
 * Each bug below keeps the allocator safe (aligned, disjoint, zeroed areas, no BUG) and only
 * changes what it does; a default stress run names the operation where behaviour parted.
 * The kernel's own asserts cannot see any of them.
 */
import { describe, expect, it } from 'vitest';
import { Simulation, simulationConfig } from '../../src/harness/simulation.ts';
import type { SeededBugName } from '../../src/kernel/mutants.ts';
import type { ActorEvent, Reply } from '../../src/sim/events.ts';
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

  it('asks at the end for a reserved area larger than the reserved chunk, which 2.6.36 fails there', async () => {
    const r = await runStress(
      { ...DEFAULT_STRESS, seed: 2, args: { ...DEFAULT_STRESS.args, ops: 300 } },
      { keepLog: true },
    );
    expect(r.verdict).toBe('clean');
    const big = r.log.find(
      (e) => e.type === 'arrive' && e.req.kind === 'alloc' && e.req.reserved === true && e.req.size === 8196,
    )!;
    const done = r.log.find((e) => e.type === 'done' && e.task === big.task);
    expect(done && done.type === 'done' && done.reply).toEqual({
      ok: false,
      error: 'alloc from reserved chunk failed',
    });
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

  it('a free that leaves another contig_hint than 2.6.36 is reported at that free, before any placement changes', () => {
    // the bug: pcpu_free_area() forgets to raise contig_hint to the merged area
    const sim = new Simulation(simulationConfig({ seed: 1, cpus: 2, policy: 'fifo', races: false }), {
      onBoot: (pc) => {
        const free = pc.pcpu_free_area.bind(pc);
        pc.pcpu_free_area = (chunk, freeme) => {
          const hint = chunk.contig_hint;
          free(chunk, freeme);
          chunk.contig_hint = hint;
        };
      },
    });
    sim.actor.slabOnline();
    void sim.actor.initLate();
    sim.actor.drain();
    const whole = sim.pc.chunks.get(0)!.contig_hint;
    const replies: Reply[] = [];
    sim.actor.send({ kind: 'alloc', cpu: 0, size: whole, align: 4 }, (r) => replies.push(r));
    sim.actor.drain();
    expect(replies[0]).toMatchObject({ ok: true, chunk: 0 });
    const ptr = (replies[0] as { ptr: number }).ptr;
    const ref = sim.checkers!.reference!;
    expect(ref.violations).toEqual([]);
    sim.actor.send({ kind: 'free', cpu: 1, ptr }, (r) => replies.push(r));
    sim.actor.drain();
    expect(ref.violations.map((v) => [v.kind, v.cpu, v.message])).toEqual([
      [
        'map',
        1,
        `free_percpu(chunk 0, off ${(replies[0] as { off: number }).off}): 2.6.36 leaves chunk 0 with contig_hint ${whole} and free_size ${whole}; this allocator has contig_hint 0 and free_size ${whole}`,
      ],
    ]);
  });

  it('an area carved 4 bytes larger than asked, at the right offset, is a map divergence at that allocation', () => {
    // the bug: the area takes 4 bytes of the free tail behind it; every offset stays 2.6.36's
    const sim = new Simulation(simulationConfig({ seed: 1, cpus: 2, policy: 'fifo', races: false }), {
      onBoot: (pc) => {
        const carve = pc.pcpu_alloc_area.bind(pc);
        pc.pcpu_alloc_area = (chunk, size, align) => {
          const off = carve(chunk, size, align);
          if (off < 0) return off;
          let i = 0;
          for (let at = 0; at < off; i++) at += Math.abs(chunk.map[i]!);
          if (chunk.map[i + 1]! > 8) {
            chunk.map[i]! -= 4;
            chunk.map[i + 1]! -= 4;
            chunk.free_size -= 4;
          }
          return off;
        };
      },
    });
    sim.actor.slabOnline();
    void sim.actor.initLate();
    sim.actor.drain();
    const replies: Reply[] = [];
    sim.actor.send({ kind: 'alloc', cpu: 1, size: 24, align: 8 }, (r) => replies.push(r));
    sim.actor.drain();
    expect(replies[0]).toMatchObject({ ok: true, chunk: 0 });
    const off = (replies[0] as { off: number }).off;
    const ref = sim.checkers!.reference!;
    expect(ref.violations.map((v) => [v.kind, v.cpu])).toEqual([['map', 1]]);
    expect(ref.violations[0]!.message).toMatch(
      new RegExp(
        `^pcpu_alloc\\(size=24, align=8\\) on CPU 1: 2\\.6\\.36 leaves chunk 0's area map as \\[-${off}, -24, (\\d+)\\]; this allocator's is \\[-${off}, -28, (\\d+)\\] \\(entry 1 differs; a positive entry is free, a negative one in use\\)$`,
      ),
    );
  });
});
