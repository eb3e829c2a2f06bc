/**
 * The two chunk backends (percpu-vm, percpu-km, seed 004) behind one contract: the same
 * placements, zeroed new areas, and exact page accounting, including when a page
 * allocation fails in the middle of populating.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../src/kernel/constants.ts';
import { alloc, boot, expectConsistent, free } from '../helpers.ts';

function workload(backend: 'vm' | 'km') {
  const { m, pc } = boot({ backend });
  const placed: [number, number][] = [];
  const ptrs: number[] = [];
  for (const [size, align] of [
    [16, 8],
    [30000, 16],
    [40000, 4096],
    [4, 4],
    [65536, 4096],
    [100, 64],
  ] as const) {
    const r = alloc(pc, size, align);
    placed.push([r.chunk!.id, r.off]);
    ptrs.push(r.ptr);
  }
  expectConsistent(pc);
  return { m, pc, placed, ptrs };
}

describe('backends', () => {
  it('place every area identically', () => {
    const vm = workload('vm');
    const km = workload('km');
    expect(vm.placed).toEqual([
      [0, 28192],
      [1, 0],
      [2, 0],
      [0, 28208],
      [3, 0],
      [0, 28224], // 28212 rounded up to 64: a 12-byte head stays free
    ]);
    expect(km.placed).toEqual(vm.placed);
  });

  it('zero a new area in every unit, even where an old area left data', () => {
    for (const backend of ['vm', 'km'] as const) {
      const { m, pc } = boot({ backend });
      const a = alloc(pc, 256, 8);
      for (let cpu = 0; cpu < 4; cpu++) m.access.fill(pc.per_cpu_ptr(a.ptr, cpu), 0xab, 256);
      free(pc, a.ptr);
      const b = alloc(pc, 256, 8);
      expect(b.ptr).toBe(a.ptr);
      for (let cpu = 0; cpu < 4; cpu++)
        expect(m.access.readBytes(pc.per_cpu_ptr(b.ptr, cpu), 256)!.every((x) => x === 0)).toBe(true);
    }
  });

  it('vm: populates only the pages an area touches, per CPU from the page allocator', () => {
    const { m, pc } = boot({ backend: 'vm' });
    const free0 = m.buddy.totalFree();
    const r = alloc(pc, 30000, 8); // chunk 1, pages 0..7
    expect(Array.from(r.chunk!.populated.subarray(0, 9))).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(free0 - m.buddy.totalFree()).toBe(8 * 4);
    const s = alloc(pc, 21000, 8); // too big for the first chunk: 30000..51000 in chunk 1
    expect([s.chunk, s.off]).toEqual([r.chunk, 30000]);
    expect(free0 - m.buddy.totalFree()).toBe(13 * 4); // pages 8..12 are new
  });

  it('vm: counts cache flushes around mapping and TLB flushes when a chunk goes', () => {
    const { m, pc } = boot({ backend: 'vm' });
    const [c0, t0] = [m.vm.cacheFlushes, m.vm.tlbFlushes];
    const a = alloc(pc, 60000, 8);
    const b = alloc(pc, 60000, 8);
    expect(m.vm.cacheFlushes - c0).toBe(2); // one flush_cache_vmap per populate
    free(pc, a.ptr);
    free(pc, b.ptr); // reclaim depopulates and destroys one chunk
    expect(m.vm.cacheFlushes - c0).toBe(3); // pcpu_pre_unmap_flush
    expect(m.vm.tlbFlushes - t0).toBe(1);
  });

  it('km: one power-of-two block per chunk, wasting the rest, populated from the start', () => {
    const { m, pc } = boot({ backend: 'km' }, { cpus: 3 });
    expect(pc.dmesg).toContain('percpu: wasting 16 pages per chunk');
    const free0 = m.buddy.totalFree();
    const r = alloc(pc, 30000, 8);
    expect(free0 - m.buddy.totalFree()).toBe(64);
    expect(r.chunk!.populated.every((x) => x === 1)).toBe(true);
    const base = pc.per_cpu_ptr_to_phys(pc.per_cpu_ptr(r.ptr, 0));
    expect(pc.per_cpu_ptr_to_phys(pc.per_cpu_ptr(r.ptr, 2))).toBe(base + 2 * pc.pcpu_unit_size);
    expect(m.buddy.allocatedOrder(base / PAGE_SIZE)).toBe(6);
  });

  it('km: refuses more than one group', () => {
    expect(() => boot({ backend: 'km', numa_groups: true }, { nodes: 2, memoryBytes: 64 << 20 }, false)).toThrow(
      'PERCPU: failed to initialize, pcpu_verify_alloc_info(ai) < 0',
    );
  });

  it('vm: a page allocation failing midway gives every page and the area back', () => {
    const { m, pc } = boot({ backend: 'vm' });
    const keep = alloc(pc, 24576, 4096); // chunk 1, pages 0..5
    expect([keep.chunk!.id, keep.off]).toEqual([1, 0]);
    const before = m.buddy.snapshot();
    // 24576 more bytes: pages 6..11 of 4 units, 24 pages; the 15th page allocation fails
    m.buddy.setFaultInjection({ failNth: 15 });
    const r = alloc(pc, 24576, 4096);
    expect(r).toMatchObject({ ptr: 0, error: 'failed to populate' });
    expect(pc.dmesg).toContain('PERCPU: allocation failed, size=24576 align=4096, failed to populate');
    expect(m.buddy.snapshot()).toEqual(before);
    expect(keep.chunk!.mapEntries()).toEqual([-24576, 65536 - 24576]);
    expect(Array.from(keep.chunk!.populated.subarray(0, 7))).toEqual([1, 1, 1, 1, 1, 1, 0]);
    expectConsistent(pc);
    m.buddy.setFaultInjection({});
    expect(alloc(pc, 24576, 4096).off).toBe(24576);
  });

  it('vm: creating a chunk fails cleanly when vmalloc space runs out', () => {
    // 1 MiB of vmalloc space holds three 256 KiB chunks with their guard pages
    const { pc } = boot({ backend: 'vm' }, { vmallocBytes: 1 << 20 });
    for (let i = 1; i <= 3; i++) expect(alloc(pc, 60000, 8).chunk!.id).toBe(i);
    const r = alloc(pc, 60000, 8);
    expect(r).toMatchObject({ ptr: 0, error: 'failed to allocate new chunk' });
    // the map of the chunk that could not be made was given back
    expect(pc.meta_bytes).toBe(2 * 128 * 4 + 3 * 16 * 4);
  });
});
