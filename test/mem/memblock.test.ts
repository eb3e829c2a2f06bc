/** The boot allocator: alignment, node locality, partial frees, and the hand-over at mm init. */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/mem/machine.ts';

const machine = () => new Machine({ cpus: 2, nodes: 2, memoryBytes: 8 << 20, shadow: false });

describe('memblock', () => {
  it('allocates aligned, from the requested node, lowest address first', () => {
    const m = machine();
    expect(m.memblock.alloc(100, 8, 0)).toBe(0);
    expect(m.memblock.alloc(100, 4096, 0)).toBe(4096);
    expect(m.memblock.alloc(4096, 65536, 1)).toBe(4 << 20);
    expect(m.memblock.alloc(200, 64, 0)).toBe(128);
  });

  it('falls back to other nodes only when asked to', () => {
    const m = machine();
    expect(m.memblock.alloc(4 << 20, 4096, 0)).toBe(0);
    expect(m.memblock.alloc(4096, 4096, 0)).toBe(-1);
    expect(m.memblock.alloc(4096, 4096, 0, true)).toBe(4 << 20);
  });

  it('frees parts of an allocation and refuses double or overlapping frees', () => {
    const m = machine();
    const p = m.memblock.alloc(65536, 4096, 0);
    m.memblock.freeRange(p + 16384, 49152);
    expect(m.memblock.reservedRanges()).toEqual([{ start: 0, end: 16384 }]);
    const before = [m.memblock.freeRanges(), m.memblock.reservedRanges()];
    expect(() => m.memblock.freeRange(p + 16384, 4096)).toThrow(/is not allocated \(double or overlapping free\)/);
    expect(() => m.memblock.freeRange(p + 12288, 8192)).toThrow(/is not allocated/);
    expect(() => m.memblock.freeRange(p, -1)).toThrow('memblock_free: size must be in [0, 8388608], got -1');
    expect([m.memblock.freeRanges(), m.memblock.reservedRanges()]).toEqual(before);
    m.memblock.freeRange(p, 16384);
    expect(m.memblock.freeRanges()).toEqual([{ start: 0, end: 8 << 20 }]);
  });

  it('hands every free page to the buddy allocator at mm init, keeping what is reserved', () => {
    const m = machine();
    m.memblock.alloc(10000, 4096, 0); // pages 0..2 stay reserved
    expect(m.mmInit()).toBe(2048 - 3);
    expect(m.buddy.totalFree()).toBe(2045);
    expect(m.buddy.nrFree[0]).toBe(1021);
    expect(() => m.memblock.alloc(4096, 4096, 0)).toThrow(/retired at mm init/);
    // a later free goes straight to the page allocator
    m.memblock.freeRange(0, 8192);
    expect(m.buddy.totalFree()).toBe(2047);
    expect(m.buddy.audit()).toEqual([]);
  });
});
