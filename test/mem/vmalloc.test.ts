/**
 * The vmalloc space: areas never overlap, congruent group areas keep their offsets, and the
 * page table maps, unmaps and translates, faulting on unmapped and out-of-range addresses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FAULT_NOT_PRESENT, FAULT_RANGE } from '../../src/mem/access.ts';
import { PAGE_OFFSET, PAGE_SIZE, VMALLOC_START } from '../../src/mem/layout.ts';
import { Machine } from '../../src/mem/machine.ts';

const machine = () => new Machine({ cpus: 2, memoryBytes: 4 << 20, vmallocBytes: 64 << 20, shadow: false });

describe('vm areas', () => {
  it('hands out the lowest free range with a guard page after each area', () => {
    const m = machine();
    const a = m.vm.getVmArea(8192)!;
    const b = m.vm.getVmArea(4096)!;
    expect([a.addr - VMALLOC_START, b.addr - VMALLOC_START]).toEqual([0, 12288]);
    m.vm.freeVmArea(a);
    expect(m.vm.getVmArea(4096)!.addr).toBe(VMALLOC_START);
    expect(() => m.vm.freeVmArea(a)).toThrow(/not a live area/);
  });

  it('places congruent group areas from the top, keeping every group at its offset', () => {
    const m = machine();
    const offsets = [0, 8 << 20, 4 << 20];
    const sizes = [65536, 131072, 65536];
    const first = m.vm.getVmAreas(offsets, sizes, 65536)!;
    const second = m.vm.getVmAreas(offsets, sizes, 65536)!;
    for (const set of [first, second]) {
      const base = set[0]!.addr - offsets[0]!;
      expect(base % 65536).toBe(0);
      set.forEach((a, g) => expect([a.addr - base, a.size]).toEqual([offsets[g], sizes[g]]));
    }
    expect(first[0]!.addr).toBeGreaterThan(second[0]!.addr);
  });

  it('property: areas never overlap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 64 }), fc.boolean(), fc.nat()), { maxLength: 60 }),
        (steps) => {
          const m = machine();
          const live: { addr: number; size: number }[] = [];
          for (const [pages, congruent, pick] of steps) {
            if (pick % 4 === 0 && live.length) {
              const a = live.splice(pick % live.length, 1)[0]!;
              m.vm.freeVmArea(m.vm.findArea(a.addr)!);
              continue;
            }
            const got = congruent
              ? m.vm.getVmAreas([0, pages * PAGE_SIZE * 2], [pages * PAGE_SIZE, PAGE_SIZE], PAGE_SIZE)
              : [m.vm.getVmArea(pages * PAGE_SIZE)];
            for (const a of got ?? []) if (a) live.push(a);
          }
          const sorted = [...live].sort((x, y) => x.addr - y.addr);
          for (let i = 1; i < sorted.length; i++)
            expect(sorted[i - 1]!.addr + sorted[i - 1]!.size).toBeLessThanOrEqual(sorted[i]!.addr);
        },
      ),
      { numRuns: 50, seed: 7 },
    );
  });
  it('property: a search starts where the last ended, and still answers the highest base that fits', () => {
    // every aligned base from the top of the range down, against the live areas alone
    const fromTop = (m: Machine, offsets: number[], sizes: number[], align: number): number | null => {
      const areas = m.vm.list();
      const last = Math.max(...offsets.map((o, g) => o + sizes[g]!));
      for (let base = Math.floor((m.vm.end - last - PAGE_SIZE) / align) * align; base >= m.vm.start; base -= align) {
        const hits = offsets.some((o, g) =>
          areas.some((a) => a.addr < base + o + sizes[g]! + PAGE_SIZE && a.addr + a.size + PAGE_SIZE > base + o),
        );
        if (!hits) return base;
      }
      return null;
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 1, max: 24 }), fc.nat()), {
          maxLength: 80,
        }),
        (steps) => {
          // a small range, so that the bottom-up allocations reach the chunks coming down from the top
          const m = new Machine({ cpus: 2, memoryBytes: 4 << 20, vmallocBytes: 2 << 20, shadow: false });
          const live: number[] = [];
          for (const [what, pages, pick] of steps) {
            if (what < 3 && live.length) {
              m.vm.freeVmArea(m.vm.findArea(live.splice(pick % live.length, 1)[0]!)!);
            } else if (what < 5) {
              const a = m.vm.getVmArea(pages * PAGE_SIZE);
              if (a) live.push(a.addr);
            } else {
              // the chunk shape of one run: the same groups and alignment every time, or now and
              // then another; two groups as sparse NUMA units have them, with a hole between
              const size = (what === 9 ? pages : 16) * PAGE_SIZE;
              const align = what === 8 ? 2 * PAGE_SIZE : PAGE_SIZE;
              const [offsets, sizes] =
                what === 10
                  ? [
                      [0, 6 * PAGE_SIZE],
                      [4 * PAGE_SIZE, 3 * PAGE_SIZE],
                    ]
                  : [[0], [size]];
              const want = fromTop(m, offsets, sizes, align);
              const got = m.vm.getVmAreas(offsets, sizes, align);
              expect(got ? got[0]!.addr - offsets[0]! : null).toBe(want);
              if (got) live.push(...got.map((a) => a.addr));
            }
          }
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });
});

describe('page table and translation', () => {
  it('maps, translates, unmaps, and faults', () => {
    const m = machine();
    const a = m.vm.getVmArea(3 * PAGE_SIZE)!;
    m.vm.mapPages(a.addr, [7, 3]);
    expect(m.access.translate(a.addr + 5)).toBe(7 * PAGE_SIZE + 5);
    expect(m.access.translate(a.addr + PAGE_SIZE + 4095)).toBe(3 * PAGE_SIZE + 4095);
    expect(m.access.translate(a.addr + 2 * PAGE_SIZE)).toBe(FAULT_NOT_PRESENT);
    expect(m.access.translate(PAGE_OFFSET + 100)).toBe(100);
    expect(m.access.translate(PAGE_OFFSET + (4 << 20))).toBe(FAULT_RANGE);
    expect(m.access.translate(12345)).toBe(FAULT_RANGE);
    expect(m.access.write32(a.addr + 2 * PAGE_SIZE, 1)).toBe(FAULT_NOT_PRESENT);
    expect(Number.isNaN(m.access.read32(a.addr + 2 * PAGE_SIZE))).toBe(true);
    m.vm.unmapRange(a.addr, PAGE_SIZE);
    expect(m.access.translate(a.addr)).toBe(FAULT_NOT_PRESENT);
    expect(m.vm.vmallocToPfn(a.addr + PAGE_SIZE)).toBe(3);
  });

  it('reads and writes every width, aligned or not, across page boundaries', () => {
    const m = machine();
    const a = m.vm.getVmArea(2 * PAGE_SIZE)!;
    m.vm.mapPages(a.addr, [9, 2]); // not physically contiguous
    const edge = a.addr + PAGE_SIZE - 2;
    expect(m.access.write32(edge, 0x11223344)).toBeGreaterThanOrEqual(0);
    expect(m.access.read32(edge)).toBe(0x11223344);
    expect([m.mem.u8[9 * PAGE_SIZE + 4094], m.mem.u8[2 * PAGE_SIZE + 1]]).toEqual([0x44, 0x11]);
    m.access.write64(edge - 4, -5n);
    expect(m.access.read64(edge - 4)).toBe(-5n);
    m.access.write16(a.addr + 1, 0xbeef);
    expect(m.access.read16(a.addr + 1)).toBe(0xbeef);
    m.access.write8(a.addr + 3, 0x7f);
    expect(m.access.read8(a.addr + 3)).toBe(0x7f);
    expect(m.access.atomicAdd32(a.addr + 8, 5)).toBe(0);
    expect(m.access.atomicLoad32(a.addr + 8)).toBe(5);
    expect(Number.isNaN(m.access.atomicAdd32(a.addr + 9, 1))).toBe(true);
    expect(m.access.atomicAdd64(a.addr + 16, 3n)).toBe(0n);
    expect(m.access.read64(a.addr + 16)).toBe(3n);
    // a write that would fault on its second page writes nothing
    m.vm.unmapRange(a.addr + PAGE_SIZE, PAGE_SIZE);
    const before = m.mem.u8.slice(9 * PAGE_SIZE + 4090, 10 * PAGE_SIZE);
    expect(m.access.write32(a.addr + PAGE_SIZE - 2, 0)).toBe(FAULT_NOT_PRESENT);
    expect(m.mem.u8.slice(9 * PAGE_SIZE + 4090, 10 * PAGE_SIZE)).toEqual(before);
  });

  it('refuses bad ranges and double mappings, changing nothing', () => {
    const m = machine();
    const a = m.vm.getVmArea(2 * PAGE_SIZE)!;
    m.vm.mapPages(a.addr, [1]);
    const pt = Array.from(m.vm.pt.subarray(0, 4));
    expect(() => m.vm.mapPages(a.addr, [2, 3])).toThrow(/is already mapped/);
    expect(() => m.vm.mapPages(a.addr + 1, [2])).toThrow(/page aligned vmalloc address/);
    expect(() => m.vm.mapPages(a.addr, [2, 3, 4])).toThrow(/not inside one vm area/);
    expect(() => m.vm.mapPages(a.addr + PAGE_SIZE, [99999])).toThrow(
      'map_kernel_range_noflush: pfns[0] must be in [0, 1023], got 99999',
    );
    expect(() => m.vm.getVmArea(100)).toThrow('get_vm_area: size must be in [4096, 67108864], got 100');
    expect(() => m.vm.getVmAreas([0, 4096], [8192, 4096], 4096)).toThrow(
      'pcpu_get_vm_areas: offsets groups 0 and 1 overlap',
    );
    expect(Array.from(m.vm.pt.subarray(0, 4))).toEqual(pt);
  });
});

describe('atomic access', () => {
  it('loads, stores and adds every width through the translation, refusing misalignment', () => {
    const m = machine();
    const a = m.vm.getVmArea(PAGE_SIZE)!;
    m.vm.mapPages(a.addr, [6]);
    expect(m.access.atomicStore(a.addr + 1, 0xfe, 1)).toBe(6 * PAGE_SIZE + 1);
    expect(m.access.atomicAdd(a.addr + 1, 3, 1)).toBe(0xfe);
    expect(m.access.atomicLoad(a.addr + 1, 1)).toBe(0x01); // wrapped at 8 bits
    m.access.atomicStore(a.addr + 2, 0xffff, 2);
    expect(m.access.atomicAdd(a.addr + 2, 1, 2)).toBe(0xffff);
    expect(m.access.atomicLoad(a.addr + 2, 2)).toBe(0);
    m.access.atomicStore(a.addr + 4, -7, 4);
    expect(m.access.atomicLoad(a.addr + 4, 4)).toBe(-7);
    m.access.atomicStore64(a.addr + 8, 1n << 40n);
    expect(m.access.atomicLoad64(a.addr + 8)).toBe(1n << 40n);
    expect(m.access.atomicStore(a.addr + 3, 1, 2)).toBe(-3);
    expect(Number.isNaN(m.access.atomicLoad(a.addr + 6, 4))).toBe(true);
    expect(m.access.atomicLoad64(a.addr + 4)).toBeNull();
    expect(Number.isNaN(m.access.atomicLoad(a.addr + PAGE_SIZE, 4))).toBe(true);
  });
});

describe('translation cache', () => {
  it('never writes through a translation after its page was unmapped, by this thread or another', () => {
    const m = machine();
    const a = m.vm.getVmArea(2 * PAGE_SIZE)!;
    m.vm.mapPages(a.addr, [12]);
    expect(m.access.write32(a.addr + 8, 1)).toBe(12 * PAGE_SIZE + 8); // fills the TLB
    expect(m.access.write32(a.addr + 12, 2)).toBe(12 * PAGE_SIZE + 12); // served by it
    m.vm.unmapRange(a.addr, PAGE_SIZE);
    expect(m.access.write32(a.addr + 8, 3)).toBe(FAULT_NOT_PRESENT);
    expect(Number.isNaN(m.access.read32(a.addr + 8))).toBe(true);
    m.vm.mapPages(a.addr, [13]);
    expect(m.access.write32(a.addr + 8, 4)).toBe(13 * PAGE_SIZE + 8);
    expect([m.mem.i32[(12 * PAGE_SIZE + 8) / 4], m.mem.i32[(13 * PAGE_SIZE + 8) / 4]]).toEqual([1, 4]);
  });
});
