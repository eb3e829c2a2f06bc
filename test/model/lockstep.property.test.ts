/**
 * Property: on random machines and random operations, with page and chunk allocations made
 * to fail at random, the model's invariants hold after every operation, and the model and
 * src/kernel (driven synchronously) agree after every operation on everything the model
 * holds: each placement and failure, the slot lists in order, every chunk's areas, free size,
 * contig_hint, map size and populated pages, the node each new page came from, the chunks
 * reclaim destroyed, and the printed failure lines. The machine's refusals are the only
 * thing the model is told.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Percpu } from '../../src/kernel/percpu.ts';
import { mm_init } from '../../src/kernel/setup.ts';
import { bootFirstChunk, nodeDistance } from '../../src/model/first-chunk.ts';
import { modelInvariants } from '../../src/model/invariants.ts';
import { type PercpuModel, areasOf } from '../../src/model/percpu.ts';
import { bootMachine } from '../../src/sim/boot.ts';
import { runSync } from '../../src/sim/drive-sync.ts';
import { Prng } from '../../src/util/prng.ts';

const machineArb = fc.record({
  cpus: fc.integer({ min: 1, max: 8 }),
  nodes: fc.integer({ min: 1, max: 4 }),
  backend: fc.constantFrom('vm' as const, 'km' as const),
  numa: fc.boolean(),
  static_size: fc.integer({ min: 1000, max: 90000 }),
  reserved_size: fc.constantFrom(0, 4096, 8192, 10000),
  dyn_size: fc.constantFrom(0, 8192, 20480, 30000),
  atom_size: fc.constantFrom(4096, 1 << 16, 1 << 21),
});
type MachineArgs = typeof machineArb extends fc.Arbitrary<infer T> ? T : never;

const opArb = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      size: fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 1, max: 64 }) },
        { weight: 3, arbitrary: fc.integer({ min: 1, max: 5000 }) },
        { weight: 1, arbitrary: fc.constantFrom(0, 4096, 40000, 65536, 65537) },
      ),
      align: fc.oneof(
        { weight: 10, arbitrary: fc.integer({ min: 0, max: 12 }).map((s) => 1 << s) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 300 }) },
      ),
      reserved: fc.boolean(),
    }),
  },
  // runs of one size fill chunks and maps
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('burst' as const),
      count: fc.integer({ min: 10, max: 90 }),
      size: fc.oneof(fc.integer({ min: 1, max: 48 }), fc.integer({ min: 1000, max: 9000 })),
      align: fc.constantFrom(1, 4, 8, 64),
    }),
  },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  // freeing all but a few empties chunks, for reclaim
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const), keep: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('slab' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('late' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('faults' as const), pct: fc.constantFrom(0, 0, 5, 30) }) },
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** What the runs reached, so that the test can insist they reach it. */
const reached = { created: 0, extended: 0, destroyed: 0, early: 0, populateFailed: 0, createFailed: 0, reserved: 0 };

/** Asserts that the model holds what the kernel holds. */
function expectSameState(pc: Percpu, model: PercpuModel): void {
  expect(model.slots.map((l) => l.map((c) => c.id))).toEqual(pc.slotLists().map((l) => l.map((c) => c.id)));
  const live = [...pc.chunks.values(), ...(pc.pcpu_reserved_chunk ? [pc.pcpu_reserved_chunk] : [])];
  expect([...model.chunks.keys()].sort((a, b) => a - b)).toEqual(live.map((c) => c.id).sort((a, b) => a - b));
  for (const k of live) {
    const c = model.chunk(k.id);
    const map = areasOf(c).map((a) => (a.free ? a.size : -a.size));
    expect(map, `chunk ${k.id} map`).toEqual(k.mapEntries());
    expect([c.freeSize, c.contigHint, c.mapAlloc, c.earlyMap], `chunk ${k.id}`).toEqual([
      k.free_size,
      k.contig_hint,
      k.map_alloc,
      k.early_map,
    ]);
    expect(c.populated, `chunk ${k.id} populated`).toEqual(Array.from(k.populated, (p) => p === 1));
  }
}

function lockstep(m: MachineArgs, ops: Op[], seed: number): void {
  const numa = m.numa && m.nodes > 1 && m.backend === 'vm';
  const sizes = {
    static_size: m.static_size,
    reserved_size: m.reserved_size,
    dyn_size: m.dyn_size,
    atom_size: m.atom_size,
  };
  const { machine, pc } = bootMachine({ ...m, memoryMiB: 256, numaGroups: numa, contents: false, sizes });
  const cpuToNode = machine.cpuToNodeMap;
  const booted = bootFirstChunk({
    cpus: m.cpus,
    cpuToNode,
    distance: numa ? nodeDistance(cpuToNode) : null,
    staticSize: m.static_size,
    reservedSize: m.reserved_size,
    dynSize: m.dyn_size,
    atomSize: m.atom_size,
    backend: m.backend,
  });
  const model = booted.model;
  const bootLines = pc.dmesg.length;
  expect(pc.dmesg.slice(1)).toEqual(booted.lines.slice(1)); // the address aside
  const live: { ptr: number; chunk: number; off: number }[] = [];

  const steps = ops.flatMap((op) =>
    op.kind === 'burst'
      ? Array.from({ length: op.count }, () => ({ ...op, kind: 'alloc' as const, reserved: false }))
      : op.kind === 'sweep'
        ? Array.from({ length: 400 }, (_, i) => ({ kind: 'free' as const, pick: i * 7919, keep: op.keep }))
        : [op.kind === 'free' ? { ...op, keep: 0 } : op],
  );
  for (const op of steps) {
    if (op.kind === 'alloc') {
      const r = runSync(pc, pc.pcpu_alloc(op.size, op.align, op.reserved));
      const maps = [...model.chunks.values()].map((c) => c.mapAlloc).join();
      const got = model.alloc(op.size, op.align, op.reserved, {
        createChunk: () => r.error !== 'failed to allocate new chunk',
        populate: () => r.error !== 'failed to populate',
      });
      expect(got).toEqual(r.ptr ? { chunk: r.chunk!.id, off: r.off } : { error: r.error });
      if ('chunk' in got && got.chunk > 0 && !live.some((l) => l.chunk === got.chunk)) reached.created++;
      if ('chunk' in got && got.chunk < 0) reached.reserved++;
      if ([...model.chunks.values()].map((c) => c.mapAlloc).join() !== maps) reached.extended++;
      if (!model.slab && r.error?.startsWith('failed')) reached.early++;
      if (r.error === 'failed to populate') reached.populateFailed++;
      if (model.slab && r.error === 'failed to allocate new chunk') reached.createFailed++;
      if (r.ptr) {
        live.push({ ptr: r.ptr, chunk: r.chunk!.id, off: r.off });
        // each unit's new pages come from its CPU's node
        if (m.backend === 'vm' && r.chunk!.id > 0)
          for (let page = Math.floor(r.off / 4096); page < Math.ceil((r.off + op.size) / 4096); page++)
            for (let cpu = 0; cpu < m.cpus; cpu++) {
              const pfn = machine.vm.vmallocToPfn(pc.pcpu_chunk_addr(r.chunk!, cpu, page));
              expect(machine.mem.pfnToNid(pfn)).toBe(cpuToNode[cpu]);
            }
      }
    } else if (op.kind === 'free') {
      if (live.length <= op.keep) continue;
      const { ptr, chunk, off } = live.splice(op.pick % live.length, 1)[0]!;
      const before = [...pc.chunks.keys()];
      runSync(pc, pc.free_percpu(ptr));
      const destroyed = model.free(chunk, off);
      expect(destroyed.sort()).toEqual(before.filter((id) => !pc.chunks.has(id)).sort());
      reached.destroyed += destroyed.length;
    } else if (op.kind === 'slab') {
      if (model.slab) continue;
      mm_init(machine, pc);
      model.applySlabOnline();
    } else if (op.kind === 'late') {
      if (!model.slab || model.lateInit) continue;
      runSync(pc, pc.percpu_init_late());
      model.applyInitLate();
    } else if (op.kind === 'faults' && model.slab) {
      machine.buddy.setFaultInjection(op.pct ? { failRate: op.pct / 100, prng: new Prng(seed) } : {});
    }
    expectSameState(pc, model);
    expect(model.log).toEqual(pc.dmesg.slice(bootLines));
    expect(modelInvariants(model)).toEqual([]);
  }
}

describe('the model in lockstep with src/kernel', () => {
  it('agrees after every operation, and its invariants hold', () => {
    fc.assert(
      fc.property(
        machineArb,
        fc.array(opArb, { minLength: 20, maxLength: 120, size: 'max' }),
        fc.integer({ min: 1, max: 1 << 30 }),
        lockstep,
      ),
      { seed: 2636, numRuns: 120 },
    );
    // the runs reached every kind of event the model decides
    for (const [what, n] of Object.entries(reached)) expect(n, what).toBeGreaterThan(3);
    // 120 whole machines compared after every operation: about 20 s on two quiet cores
  }, 90_000);
});
