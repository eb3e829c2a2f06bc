/**
 * Early allocation (seed 001): before slab is online the first chunks run on 128-entry
 * __initdata maps and no chunk can be created. percpu_init_late() swaps in allocated maps.
 */
import { describe, expect, it } from 'vitest';
import { PERCPU_DYNAMIC_EARLY_SLOTS } from '../../src/kernel/constants.ts';
import { mm_init } from '../../src/kernel/setup.ts';
import { alloc, boot, expectConsistent, mapOf } from '../helpers.ts';
import { runSync } from '../../src/sim/drive-sync.ts';

describe('early boot', () => {
  it('serves 125 small allocations from the 128-entry early map, then warns once and fails', () => {
    const { pc } = boot({}, {}, false);
    const offs: number[] = [];
    for (let i = 0; i < 125; i++) offs.push(alloc(pc, 4, 4).off);
    expect(offs[0]).toBe(28192);
    expect(offs[124]).toBe(28192 + 124 * 4);
    expect(pc.pcpu_first_chunk!.map_used).toBe(127);
    const r = alloc(pc, 4, 4);
    expect(r).toMatchObject({ ptr: 0, error: 'failed to extend area map' });
    expect(alloc(pc, 4, 4).error).toBe('failed to extend area map');
    expect(pc.warnings.filter((w) => w.includes('slab_is_available'))).toHaveLength(1);
    expect(pc.pcpu_first_chunk!.map_alloc).toBe(PERCPU_DYNAMIC_EARLY_SLOTS);
  });

  it('cannot create a chunk before slab: the early dynamic size is the budget', () => {
    const { pc } = boot({}, {}, false);
    expect(pc.pcpu_dyn_size).toBe(20960);
    expect(alloc(pc, 20960, 1).off).toBe(28192);
    expect(alloc(pc, 16, 8)).toMatchObject({ ptr: 0, error: 'failed to allocate new chunk' });
    expect(pc.chunks.size).toBe(1);
  });

  it('makes the dynamic area at least PERCPU_DYNAMIC_EARLY_SIZE', () => {
    const { pc } = boot({ dyn_size: 0 }, {}, false);
    // 20000 + 8192 + 12288 = 40480 -> 40960 after page alignment
    expect(pc.pcpu_dyn_size).toBe(40960 - 28192);
  });

  it('keeps every placement across slab online and percpu_init_late', () => {
    const { m, pc } = boot({}, {}, false);
    const early = [alloc(pc, 8, 8), alloc(pc, 100, 4), alloc(pc, 32, 8, true)];
    const before = [mapOf(pc.pcpu_first_chunk), mapOf(pc.pcpu_reserved_chunk)];
    mm_init(m, pc);
    const mid = alloc(pc, 4, 4);
    expect(mid.off).toBe(28192 + 8 + 100);
    runSync(pc, pc.percpu_init_late());
    expect(pc.pcpu_first_chunk!.early_map).toBe(false);
    expect(pc.pcpu_reserved_chunk!.early_map).toBe(false);
    expect(mapOf(pc.pcpu_first_chunk)).toEqual([...before[0]!.slice(0, 3), -4, 20960 - 112]);
    expect(mapOf(pc.pcpu_reserved_chunk)).toEqual(before[1]);
    expect(early.map((e) => e.off)).toEqual([28192, 28200, 20000]);
    // map extension works now
    for (let i = 0; i < 200; i++) expect(alloc(pc, 4, 4).ptr).not.toBe(0);
    expect(pc.pcpu_first_chunk!.map_alloc).toBe(256);
    expectConsistent(pc);
  });

  it('refuses percpu_init_late before slab and a second time', () => {
    const { m, pc } = boot({}, {}, false);
    expect(() => runSync(pc, pc.percpu_init_late())).toThrow(/slab is not available/);
    mm_init(m, pc);
    runSync(pc, pc.percpu_init_late());
    expect(() => runSync(pc, pc.percpu_init_late())).toThrow(/already done/);
  });
});
