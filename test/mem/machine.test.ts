/**
 * The machine's layout and configuration: one header describes every region, any thread can
 * attach from the buffer alone, bad configurations are refused by name, and the shadow
 * region records ownership per granule.
 */
import { describe, expect, it } from 'vitest';
import { FAULT_NOT_PRESENT, MemAccess } from '../../src/mem/access.ts';
import { PAGE_OFFSET, PAGE_SIZE, readHeader } from '../../src/mem/layout.ts';
import { Machine } from '../../src/mem/machine.ts';
import { PhysMem } from '../../src/mem/phys.ts';
import { Shadow } from '../../src/mem/shadow.ts';

describe('machine configuration', () => {
  it('splits memory into nodes and knows the node of every pfn', () => {
    const m = new Machine({ cpus: 8, nodes: 4, memoryBytes: 16 << 20 });
    expect([0, 1023, 1024, 4095].map((p) => m.mem.pfnToNid(p))).toEqual([0, 0, 1, 3]);
    expect([0, 1, 2, 7].map((c) => m.cpuToNode(c))).toEqual([0, 0, 1, 3]);
    expect(m.cpuDistance(0, 1)).toBe(10);
    expect(m.cpuDistance(0, 7)).toBe(20);
    expect(m.mem.fallbackOrder(2)).toEqual([2, 0, 1, 3]);
  });

  it('lets another thread attach from the buffer alone', () => {
    const m = new Machine({ memoryBytes: 8 << 20, nodes: 2 });
    const l = readHeader(m.sab);
    expect(l).toEqual(m.mem.layout);
    const other = PhysMem.attach(m.sab);
    m.access.write32(PAGE_OFFSET + 4096, 77);
    expect(new MemAccess(m.sab).read32(PAGE_OFFSET + 4096)).toBe(77);
    expect(other.pfnToNid(1500)).toBe(1);
  });

  it('refuses bad configurations by name', () => {
    expect(() => new Machine({ memoryBytes: (8 << 20) + 100 })).toThrow(
      'PhysMem.create: memoryBytes must be a multiple of 4096',
    );
    expect(() => new Machine({ nodes: 17 })).toThrow('PhysMem.create: nodes must be in [1, 16], got 17');
    expect(() => new Machine({ cpus: 0 })).toThrow('Machine: cpus must be in [1, 4096], got 0');
    expect(() => new Machine({ memoryBytes: 1 << 20, nodes: 2 })).toThrow(/under 256 pages per node/);
    expect(
      () =>
        new Machine({
          nodes: 2,
          distance: [
            [10, 20],
            [20, 30, 1],
          ],
        }),
    ).toThrow('PhysMem.create: distance must be a 2x2 table');
    expect(() => new Machine({ cpus: 2, cpuToNode: [0, 1] })).toThrow('Machine: cpuToNode[1] must be in [0, 0], got 1');
  });

  it('reaches every width above 2 GiB of a 4 GiB machine (unsigned indexes)', () => {
    const m = new Machine({ memoryBytes: 4 * 1024 ** 3, shadow: false });
    const va = PAGE_OFFSET + 3 * 1024 ** 3 + 64;
    m.access.write16(va, 0xbeef);
    expect(m.access.read16(va)).toBe(0xbeef);
    m.access.write64(va + 8, -2n);
    expect(m.access.read64(va + 8)).toBe(-2n);
    m.access.atomicStore(va + 16, 7, 4);
    expect(m.access.atomicAdd32(va + 16, 1)).toBe(7);
    expect(m.access.atomicLoad(va + 16, 4)).toBe(8);
    expect(m.access.atomicAdd64(va + 24, 5n)).toBe(0n);
    expect(m.mem.i32[(3 * 1024 ** 3 + 80) / 4]).toBe(8);
  });

  it('reads and writes 1 and 2 bytes through readSmall and writeSmall as through read8, read16, write8 and write16', () => {
    const m = new Machine({ memoryBytes: 16 << 20, shadow: false });
    const a = m.access;
    const page = PAGE_OFFSET + 5 * PAGE_SIZE;
    for (const off of [0, 1, 2, PAGE_SIZE - 2, PAGE_SIZE - 1]) {
      const va = page + off;
      expect(a.writeSmall(va, 0x1a1b2, 2)).toBe(va - PAGE_OFFSET);
      expect([a.read16(va), a.readSmall(va, 2), a.readSmall(va, 1), a.readSmall(va + 1, 1)]).toEqual([
        0xa1b2, 0xa1b2, 0xb2, 0xa1,
      ]);
      expect(a.writeSmall(va + 1, 0x1c3, 1)).toBe(va + 1 - PAGE_OFFSET);
      expect([a.read8(va + 1), a.readSmall(va, 2)]).toEqual([0xc3, 0xc3b2]);
    }
    const gone = m.vm.start + 7 * PAGE_SIZE; // a vmalloc page nothing maps
    expect([a.readSmall(gone, 1), a.readSmall(gone, 2), a.writeSmall(gone, 1, 1), a.writeSmall(gone, 1, 2)]).toEqual([
      NaN,
      NaN,
      FAULT_NOT_PRESENT,
      FAULT_NOT_PRESENT,
    ]);
    expect(a.readSmall(gone - 1, 2)).toBeNaN(); // across into it
  });

  it('reads and writes 1 and 2 bytes through the TLB of 32-bit access, which an unmap empties', () => {
    const m = new Machine({ memoryBytes: 16 << 20, shadow: false });
    const a = m.access;
    const va = m.vm.getVmArea(PAGE_SIZE)!.addr;
    const idx = (va - m.vm.start) / PAGE_SIZE;
    const [f1, f2] = [7, 9];
    m.vm.mapPages(va, [f1]);
    expect(a.writeSmall(va + 6, 0x1234, 2)).toBe(f1 * PAGE_SIZE + 6); // a miss: the walk fills the TLB
    a.write16(PAGE_OFFSET + f2 * PAGE_SIZE + 6, 0x5678);
    m.vm.pt[idx] = f2 + 1; // behind the data path's back: no generation bump
    expect([a.readSmall(va + 6, 2), a.readSmall(va + 7, 1), a.read16(va + 6)]).toEqual([0x1234, 0x12, 0x5678]);
    expect(a.writeSmall(va + 8, 0xab, 1)).toBe(f1 * PAGE_SIZE + 8); // the TLB's frame, as read32 and write32 would
    m.vm.pt[idx] = f1 + 1;
    m.vm.unmapRange(va, PAGE_SIZE);
    expect(a.readSmall(va + 6, 2)).toBeNaN();
    m.vm.mapPages(va, [f2]);
    expect(a.writeSmall(va + 6, 0x9a, 1)).toBe(f2 * PAGE_SIZE + 6);
    expect([a.readSmall(va + 6, 2), a.readSmall(va + 6, 1)]).toEqual([0x569a, 0x9a]);
    expect(a.readSmall(va + 7, 2)).toBe(0x56); // unaligned: walked
  });

  it('can be as large as 1 GiB', () => {
    const m = new Machine({ memoryBytes: 1 << 30, shadow: false });
    expect(m.mem.nrPages).toBe(262144);
    expect(m.access.write32(PAGE_OFFSET + (1 << 30) - 4, 5)).toBe((1 << 30) - 4);
  });
});

describe('shadow region', () => {
  it('tags and clears granules of physical memory, and the tags are visible to any thread', () => {
    const m = new Machine({ memoryBytes: 4 << 20, shadow: true, shadowShift: 3 });
    m.shadow.setPhys(100, 20, 42); // granules 12..14
    const s = new Shadow(m.sab);
    expect([95, 96, 100, 119, 120].map((p) => s.tagAt(p))).toEqual([0, 42, 42, 42, 0]);
    m.shadow.clearPhys(96, 24);
    expect(s.tagAt(100)).toBe(0);
    expect(() => m.shadow.setPhys(0, 8, 0)).toThrow('shadow_set: tag must be in [1, 2147483647], got 0');
    expect(() => m.shadow.setPhys(4 << 20, 8, 1)).toThrow(/shadow_set: phys must be in/);
  });

  it('tags through a virtual mapping', () => {
    const m = new Machine({ memoryBytes: 4 << 20, shadow: true, shadowShift: 3 });
    const a = m.vm.getVmArea(8192)!;
    m.vm.mapPages(a.addr, [5, 9]);
    m.shadow.setVirt(m.access, a.addr + 4090, 12, 7);
    expect(m.shadow.tagAt(5 * 4096 + 4090)).toBe(7);
    expect(m.shadow.tagAt(9 * 4096 + 5)).toBe(7);
    expect(m.shadow.tagAt(9 * 4096 + 8)).toBe(0);
    expect(() => m.shadow.setVirt(m.access, a.addr + 8190, 8, 7)).toThrow(/does not translate/);
  });
});
