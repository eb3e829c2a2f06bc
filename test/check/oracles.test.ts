/**
 * Oracles that share nothing with the allocator: each catches its class of bug, brought into
 * an otherwise correct machine, and says nothing on the correct code.
 */
import { describe, expect, it } from 'vitest';
import type { ActorEvent, ActorEventBody } from '../../src/sim/events.ts';
import { checkAllocator } from '../../src/check/allocator.ts';
import { AreaOracle } from '../../src/check/areas.ts';
import { checkUnitLayout } from '../../src/check/isolation.ts';
import { PageWalk } from '../../src/check/walk.ts';
import { H_PT_GEN } from '../../src/mem/layout.ts';
import { DEFAULT_STRESS, runStress } from '../../src/stress/engine.ts';
import { boot } from '../helpers.ts';
import { isolationError, sim } from './sim.ts';

// each oracle on its own: the reference model would see these bugs first
const short = {
  ...DEFAULT_STRESS,
  seed: 2,
  backend: 'vm' as const,
  nodes: 1,
  reference: false,
  args: { ...DEFAULT_STRESS.args, ops: 300 },
};

describe('oracles on the stress engine', () => {
  it('an allocator that ignores the alignment is caught from the replies', async () => {
    const r = await runStress(short, { bugs: ['area-ignores-align'] });
    expect(r.violations[0]).toMatchObject({ checker: 'areas', kind: 'misaligned' });
    expect(r.violations[0]!.message).toMatch(
      /^misaligned: \d+ bytes at chunk 0 offset \d+ \(pointer [0-9a-f]+\) for cpu 0: cpu 0's copy at [0-9a-f]+ is not aligned to \d+$/,
    );
  });

  it('maps that grow before slab is online break the early map limit', async () => {
    const r = await runStress(short, { bugs: ['meta-before-slab'] });
    expect(r.violations[0]).toMatchObject({ checker: 'areas', kind: 'early-map-limit' });
    expect(r.violations[0]!.message).toBe(
      'early-map-limit: 128 areas live in chunk 0 before slab is online; an early map of 128 entries cannot describe them',
    );
  });

  it('a populate that zeroes only some units gives a non-zero new area in the others', async () => {
    const r = await runStress(short, { bugs: ['populate-zeroes-short'] });
    expect(r.violations[0]).toMatchObject({ checker: 'isolation', kind: 'nonzero-new-area' });
    expect(r.violations[0]!.message).toContain("in cpu 2's copy");
  });

  it('is silent on the correct code', async () => {
    expect((await runStress(short)).violations).toEqual([]);
  });
});

describe('access checks', () => {
  it('a per_cpu_ptr that resolves to the wrong CPU is caught at the access that names the CPU', async () => {
    const s = sim({ cpus: 3 });
    const c0 = s.cpu(0);
    const p = await c0.alloc_percpu(16, 8);
    c0.per_cpu_ptr = (ptr, cpu) => ptr + c0.ctx.per_cpu_offset[(cpu + 1) % 3]!;
    const v = s.tracker.describe(isolationError(() => c0.per_cpu_write(p, 1, 7)).fault);
    expect(v).toMatchObject({ kind: 'foreign-unit', cpu: 0, unitCpu: 2 });
    expect(v.message).toContain("cpu 2's copy, but the access named cpu 1");
    expect(() => c0.per_cpu_read(p, 0)).toThrow("cpu 1's copy, not declared remote");
  });

  it('a translation cached across an unmap is caught on the fast path and on 32-bit access', async () => {
    const s = sim();
    const c1 = s.cpu(1);
    const p = await c1.alloc_percpu(40000, 8); // a new vm chunk
    c1.this_cpu_add(p, 5); // fills the this_cpu cache
    c1.this_cpu_add(p, 5);
    const va = c1.this_cpu_ptr(p);
    // remap the page to another frame, then put the generation back, as an unmap that forgot
    // to invalidate cached translations would leave it
    const header = new Int32Array(s.machine.sab, 0, 1024);
    const gen = header[H_PT_GEN]!;
    const old = s.machine.access.translate(va) - (va % 4096);
    const pfn = s.machine.buddy.allocPagesNode(0, 0);
    s.machine.vm.unmapRange(va, 4096);
    s.machine.vm.mapPages(va, [pfn]);
    header[H_PT_GEN] = gen;
    // the new frame belongs to the same copy, as it would after a real remap
    s.machine.shadow.tags.copyWithin(pfn * 4096, old, old + 4096);
    const fast = s.tracker.describe(isolationError(() => c1.this_cpu_add(p, 1)).fault);
    expect(fast).toMatchObject({ kind: 'stale-translation', cpu: 1 });
    expect(fast.message).toMatch(/the access went to physical [0-9a-f]+, the page table maps it to [0-9a-f]+/);
    expect(() => c1.this_cpu_write(p, 9)).toThrow('stale-translation');
  });
});

describe('configuration and reply oracles by hand', () => {
  it('checks the units against the configuration, not the allocator', () => {
    const { m, pc } = boot({}, { cpus: 4, nodes: 2, shadow: true });
    const walk = new PageWalk(m.sab);
    const cfg = { cpus: 4, cpuToNode: (c: number) => m.cpuToNode(c), groupsByNode: false, unitSize: pc.pcpu_unit_size };
    const good = [...pc.__per_cpu_offset];
    expect(checkUnitLayout(cfg, good, pc.image.per_cpu_start, walk)).toEqual([]);
    const swapped = [good[1]!, good[0]!, good[2]!, good[3]!];
    expect(checkUnitLayout(cfg, swapped, pc.image.per_cpu_start, walk)).toContain(
      `cpu 1's unit is at offset ${good[0]}, its group (led by cpu 0) puts it at ${good[1]! + pc.pcpu_unit_size}`,
    );
    const shared = [good[0]!, good[0]!, good[2]!, good[3]!];
    expect(checkUnitLayout(cfg, shared, pc.image.per_cpu_start, walk)).toContain(
      'the units of cpu 0 and cpu 1 overlap',
    );
  });

  it('finds overlapping replies, early chunks and early failures with room left', () => {
    const { m } = boot({}, { cpus: 2, shadow: true });
    const o = new AreaOracle({
      offsets: [0, 65536],
      walk: new PageWalk(m.sab),
      dynamic: [28192, 48672],
      reserved: [20000, 28192],
    });
    let seq = 0;
    const ev = (body: ActorEventBody): void => o.observe({ ...body, seq: ++seq, tick: seq } as ActorEvent);
    const alloc = (task: number, size: number, ptr: number, chunk: number, off: number): void => {
      ev({ type: 'arrive', task, cpu: 0, req: { kind: 'alloc', cpu: 0, size, align: 8 } });
      ev({ type: 'done', task, cpu: 0, kind: 'alloc', reply: { ok: true, ptr, chunk, off, size } });
    };
    alloc(1, 64, 0x10000, 0, 28192);
    alloc(2, 64, 0x10020, 0, 28224);
    expect(o.violations.map((v) => v.message)).toEqual([
      'overlap: 64 bytes at chunk 0 offset 28224 (pointer 10020) for cpu 0 overlaps the live area of 64 bytes at chunk 0 offset 28192 made by cpu 0',
    ]);
    alloc(3, 16, 0x90000, 1, 0);
    expect(o.violations[1]!.kind).toBe('early-chunk');
    ev({ type: 'arrive', task: 4, cpu: 0, req: { kind: 'alloc', cpu: 0, size: 8, align: 8 } });
    ev({ type: 'done', task: 4, cpu: 0, kind: 'alloc', reply: { ok: false, error: 'failed to extend area map' } });
    expect(o.violations[2]!.message).toMatch(
      /^early-map-limit: an early allocation of 8 bytes failed \("failed to extend area map"\) while chunk 0's map needs only about \d+ of its 128 entries$/,
    );
  });

  it('reports a free that did not merge as such, before the hint it also breaks', () => {
    const { pc } = boot();
    const c = pc.pcpu_first_chunk!;
    // [-28192 | 100 | 100 | rest] with the right sizes: only the merge is missing
    const rest = c.map[1]! - 200;
    c.map.set([-28192, 100, 100, rest]);
    c.map_used = 4;
    expect(checkAllocator(pc)[0]).toMatchObject({
      invariant: 'adjacent-free',
      message: 'map[1] and map[2] are free areas side by side (100 and 100 bytes): a free did not merge',
    });
  });
});
