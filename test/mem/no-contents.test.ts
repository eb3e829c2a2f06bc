/**
 * A machine without contents (what trace replay boots): its pages, page info and mappings
 * without the bytes, so it may be far larger than a machine with bytes, and the pages it
 * never uses cost the host nothing. The buddy allocator's top-order lists are runs, not links.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BuddyAllocator } from '../../src/mem/buddy.ts';
import { Machine } from '../../src/mem/machine.ts';
import { PAGE_OFFSET, readHeader } from '../../src/mem/layout.ts';
import { MAX_MEMORY, MAX_MEMORY_NO_CONTENTS, PhysMem } from '../../src/mem/phys.ts';

const GiB = 1024 ** 3;

describe('a machine without contents', () => {
  it('may have up to 64 GiB, where one with bytes stops at 4 GiB', () => {
    expect(() => PhysMem.create({ memoryBytes: 8 * GiB })).toThrow(
      `PhysMem.create: memoryBytes must be in [1048576, ${MAX_MEMORY}], got ${8 * GiB}`,
    );
    const mem = PhysMem.create({ memoryBytes: MAX_MEMORY_NO_CONTENTS, contents: false });
    expect(mem.nrPages).toBe(16 * 1024 ** 2);
    expect(mem.u8.length).toBe(0);
    // the buffer ends where the bytes would start
    expect(mem.sab.byteLength).toBe(mem.layout.physOffset);
    expect(readHeader(mem.sab).contents).toBe(false);
    expect(() => PhysMem.create({ memoryBytes: MAX_MEMORY_NO_CONTENTS + 4096, contents: false })).toThrow(
      /memoryBytes must be in \[1048576, 68719476736\]/,
    );
  });

  it('says no page has an owner until one is set, at any pfn', () => {
    const mem = PhysMem.create({ memoryBytes: 16 * GiB, contents: false });
    const last = mem.nrPages - 1;
    expect([mem.pageChunk(0), mem.pageCpu(0), mem.pageChunk(last), mem.pageCpu(last)]).toEqual([-1, -1, -1, -1]);
    mem.setPageChunk(last, 0);
    mem.setPageCpu(last, 3);
    expect([mem.pageChunk(last), mem.pageCpu(last)]).toEqual([0, 3]);
    mem.setPageChunk(last, -1);
    expect(mem.pageChunk(last)).toBe(-1);
  });

  it('maps and checks pages but stores no byte', () => {
    const m = new Machine({ memoryBytes: 8 * GiB, contents: false, vmallocBytes: 1 << 30 });
    m.mmInit();
    const area = m.vm.getVmAreas([0], [2 * 4096], 4096)![0]!;
    const pfn = m.buddy.allocPagesNode(0, 0);
    m.vm.mapPages(area.addr, [pfn]);
    expect(m.access.fill(area.addr, 0xab, 4096)).toBe(0);
    expect(m.access.writeBytes(area.addr, new Uint8Array([1, 2, 3]))).toBe(0);
    // the second page is not mapped: still a fault
    expect(m.access.fill(area.addr + 4096, 0, 16)).toBeLessThan(0);
    // a frame above 4 GiB translates like any other
    expect(m.access.translate(PAGE_OFFSET + 6 * GiB)).toBe(6 * GiB);
  });

  it('checks every unit of a chunk at once, and names the first unit not mapped, as a machine with bytes does', () => {
    for (const contents of [false, true]) {
      const m = new Machine({ memoryBytes: contents ? 64 << 20 : 8 * GiB, contents, vmallocBytes: 1 << 30 });
      m.mmInit();
      // three units of two pages, 16 pages apart; unit 1's second page is never mapped
      const area = m.vm.getVmAreas([0], [48 * 4096], 4096)![0]!;
      const units = [0, 16 * 4096, 32 * 4096];
      for (const [u, pages] of [
        [0, 2],
        [1, 1],
        [2, 2],
      ] as const)
        for (let i = 0; i < pages; i++) m.vm.mapPages(area.addr + units[u]! + i * 4096, [m.buddy.allocPagesNode(0, 0)]);
      const at = (off: number, len: number, n = 3) => m.access.fillUnits(area.addr + off, units, n, 0x5a, len);
      expect([at(0, 4096), at(100, 200), at(4000, 96)]).toEqual([-1, -1, -1]);
      // an area that crosses into the second page, or lies in it, faults in unit 1 only
      expect([at(4000, 97), at(4096, 1), at(8191, 1)]).toEqual([1, 1, 1]);
      expect(at(4096, 1, 1)).toBe(-1); // unit 0 alone is whole
      expect([at(8192, 1), at(0, 0)]).toEqual([0, -1]);
      // the units before the one that faults are filled, as fill() would fill each
      if (contents) {
        const back = (u: number, off: number) => m.access.readBytes(area.addr + units[u]! + off, 1)![0];
        expect([back(0, 4000), back(1, 4000), back(0, 4096)]).toEqual([0x5a, 0x5a, 0x5a]);
      }
      // the direct map goes through the same check as fill()
      expect(m.access.fillUnits(PAGE_OFFSET, [0, 4096], 2, 0, 16)).toBe(-1);
      expect(m.access.fillUnits(PAGE_OFFSET + m.mem.nrPages * 4096, [0], 1, 0, 16)).toBe(0);
    }
  });

  it('hands out the pages of 64 GiB in the same order as linked lists would', () => {
    const mem = PhysMem.create({ memoryBytes: MAX_MEMORY_NO_CONTENTS, contents: false, nodes: 2 });
    const b = new BuddyAllocator(mem);
    b.addRange(5, mem.nrPages); // an unaligned start: small blocks, then top-order runs
    expect(b.buddyinfo(0)).toEqual([1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 8191]);
    expect(b.buddyinfo(1)[10]).toBe(8192);
    // the last block handed over is the first handed out, split from its low end
    expect(b.allocPagesNode(1, 10)).toBe(mem.nrPages - 1024);
    expect(b.allocPagesNode(1, 0)).toBe(mem.nrPages - 2048);
    b.freePages(mem.nrPages - 1024, 10);
    expect(b.allocPagesNode(1, 10)).toBe(mem.nrPages - 1024); // back at the head
    expect(b.audit()).toEqual([]);
  });
});

describe('replay', () => {
  it('keeps more than 4 GiB populated on its default machine, and says when a smaller one runs out', () => {
    // one 64 KiB area per chunk on 4 CPUs: 256 KiB of pages each, 5 GiB for 20480 of them
    const lines = ['{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}', '{"op":"slab_online"}'];
    for (let i = 0; i < 20480; i++) lines.push(`{"op":"alloc","id":"a${i}","size":65536,"align":8}`);
    const input = lines.join('\n') + '\n';
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/percpu-sim.mjs', 'replay', ...args, '-'], {
        input,
        encoding: 'utf8',
        timeout: 120_000,
      });
    const big = run();
    expect(big.stderr).toBe('');
    expect(big.status).toBe(0);
    expect(big.stdout.trimEnd().split('\n').at(-1)).toBe('{"op":"alloc","id":"a20479","chunk":20480,"offset":0}');
    const small = run('--memory', '4096');
    expect(small.stderr).toContain('the replay machine ran out of physical memory ("failed to populate")');
  });
});
