/**
 * Percpu pointers: __per_cpu_offset[], per_cpu_ptr(), __addr_to_pcpu_ptr() and back, the
 * address-to-chunk lookup, and per_cpu_ptr_to_phys() for every kind of chunk.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_OFFSET, PAGE_SIZE } from '../../src/mem/layout.ts';
import { alloc, boot, free } from '../helpers.ts';

describe('percpu pointers', () => {
  it('per_cpu_ptr(p, cpu) is p + __per_cpu_offset[cpu], each unit one unit_size apart', () => {
    const { pc } = boot();
    const r = alloc(pc, 16, 8);
    const base = pc.pcpu_base_addr;
    expect(pc.__per_cpu_offset).toEqual([0, 1, 2, 3].map((c) => base - pc.image.per_cpu_start + c * 65536));
    expect(pc.per_cpu_ptr(r.ptr, 2)).toBe(base + 2 * 65536 + 28192);
    expect(pc.__pcpu_ptr_to_addr(r.ptr)).toBe(base + 28192);
    expect(pc.__addr_to_pcpu_ptr(base + 28192)).toBe(r.ptr);
    // a static percpu variable: its pointer is its address in the kernel image's section
    expect(pc.per_cpu_ptr(pc.image.per_cpu_start + 8, 1)).toBe(base + 65536 + 8);
  });

  it('finds the chunk of an address: reserved range, first chunk, and the page -> chunk link', () => {
    const { pc } = boot();
    const res = alloc(pc, 64, 8, true);
    const dyn = alloc(pc, 64, 8);
    const big = alloc(pc, 40000, 8);
    expect(pc.pcpu_chunk_addr_search(pc.__pcpu_ptr_to_addr(res.ptr), 0)).toBe(pc.pcpu_reserved_chunk);
    expect(pc.pcpu_chunk_addr_search(pc.__pcpu_ptr_to_addr(dyn.ptr), 0)).toBe(pc.pcpu_first_chunk);
    for (const cpu of [0, 3]) expect(pc.pcpu_chunk_addr_search(pc.__pcpu_ptr_to_addr(big.ptr), cpu)).toBe(big.chunk);
    expect(() => pc.pcpu_chunk_addr_search(pc.__pcpu_ptr_to_addr(big.ptr) + 12 * PAGE_SIZE, 0)).toThrow(
      /is in no percpu chunk/,
    );
    expect(free(pc, big.ptr)).toBe(big.chunk);
  });

  it('per_cpu_ptr_to_phys: __pa() in the embedded first chunk, the page table elsewhere', () => {
    const { m, pc } = boot();
    const dyn = alloc(pc, 64, 8);
    const a1 = pc.per_cpu_ptr(dyn.ptr, 1);
    expect(pc.per_cpu_ptr_to_phys(a1)).toBe(a1 - PAGE_OFFSET);
    const big = alloc(pc, 40000, 8);
    for (let cpu = 0; cpu < 4; cpu++) {
      const va = pc.per_cpu_ptr(big.ptr, cpu) + 5000;
      expect(pc.per_cpu_ptr_to_phys(va)).toBe(m.access.translate(va));
    }
    const { pc: paged, m: pm } = boot({ fc: 'page' });
    const p = alloc(paged, 64, 8);
    const va = paged.per_cpu_ptr(p.ptr, 2);
    expect(pm.vm.isVmallocAddr(va)).toBe(true);
    expect(paged.per_cpu_ptr_to_phys(va)).toBe(pm.access.translate(va));
  });
});
