/**
 * pcpu_alloc_area(): first fit with the head and tail rules. Each test starts from a
 * hand-made map on a fresh 64 KiB-unit chunk and checks the exact offset and map.
 */
import { describe, expect, it } from 'vitest';
import type { PcpuChunk } from '../../src/kernel/chunk.ts';
import type { Percpu } from '../../src/kernel/percpu.ts';
import { boot } from '../helpers.ts';

const U = 65536;

function chunkWith(pc: Percpu, entries: number[], contig?: number): PcpuChunk {
  const c = pc.pcpu_alloc_chunk()!;
  c.map.set(entries);
  c.map_used = entries.length;
  c.free_size = entries.filter((e) => e > 0).reduce((a, b) => a + b, 0);
  c.contig_hint = contig ?? Math.max(0, ...entries);
  return c;
}

describe('pcpu_alloc_area', () => {
  const { pc } = boot();

  it('splits off the tail of the first fitting area', () => {
    //   [ 65536 free ]  ->  [ 16 A | 65520 free ]
    const c = chunkWith(pc, [U]);
    expect(pc.pcpu_alloc_area(c, 16, 8)).toBe(0);
    expect(c.mapEntries()).toEqual([-16, U - 16]);
    expect(c.free_size).toBe(U - 16);
    expect(c.contig_hint).toBe(U - 16);
  });

  it('keeps a tail smaller than an int inside the new area', () => {
    //   [ -8 | 18 free | -65510 ]  alloc 16  ->  [ -8 | -18 | -65510 ]  (2 bytes of tail kept)
    const c = chunkWith(pc, [-8, 18, -(U - 26)]);
    expect(pc.pcpu_alloc_area(c, 16, 8)).toBe(8);
    expect(c.mapEntries()).toEqual([-8, -18, -(U - 26)]);
    expect(c.free_size).toBe(0);
  });

  it('merges a head smaller than an int into the allocated area before it', () => {
    //   [ -6 | 100 free | ... ]  alloc 16 align 8 at 6: head 2
    //   ->  [ -8 | -16 | 82 free | ... ]   the previous area grows by 2 bytes
    const c = chunkWith(pc, [-6, 100, -(U - 106)]);
    expect(pc.pcpu_alloc_area(c, 16, 8)).toBe(8);
    expect(c.mapEntries()).toEqual([-8, -16, 82, -(U - 106)]);
    expect(c.free_size).toBe(82);
  });

  it('gives a head of at least an int its own free area', () => {
    //   [ -4 | 100 free | ... ]  alloc 16 align 16 at 4: head 12
    //   ->  [ -4 | 12 free | -16 | 72 free | ... ]
    const c = chunkWith(pc, [-4, 100, -(U - 104)]);
    expect(pc.pcpu_alloc_area(c, 16, 16)).toBe(16);
    expect(c.mapEntries()).toEqual([-4, 12, -16, 72, -(U - 104)]);
    expect(c.free_size).toBe(84);
    // the scan stopped before the last entry: the old hint (100) stays, an upper bound
    expect(c.contig_hint).toBe(100);
  });

  it('merges a head into a free area before it', () => {
    //   [ 8 free | 100 free ]  alloc 16 align 16: the 8-byte area is too small, the head of
    //   8 at offset 8 joins it  ->  [ 16 free | -16 | 76 free ]
    const c = chunkWith(pc, [8, 100]);
    c.map_used = 2;
    expect(pc.pcpu_alloc_area(c, 16, 16)).toBe(16);
    expect(c.mapEntries()).toEqual([16, -16, 76]);
    expect(c.free_size).toBe(92);
  });

  it('makes contig_hint exact only when the scan reached the last entry', () => {
    //   [ 40 free | -8 | 200 free | -(rest) ]  alloc 32: fits in the first area, not the last
    //   entry, so the hint keeps its old (larger) value
    const c = chunkWith(pc, [40, -8, 200, -(U - 248)], 200);
    expect(pc.pcpu_alloc_area(c, 32, 8)).toBe(0);
    expect(c.mapEntries()).toEqual([-32, 8, -8, 200, -(U - 248)]);
    expect(c.contig_hint).toBe(200);
    //   [ ... | 64 free ] as the last entry: the hint becomes the largest area seen on the way
    const d = chunkWith(pc, [20, -(U - 84), 64], 1000);
    expect(pc.pcpu_alloc_area(d, 48, 4)).toBe(U - 64);
    expect(d.mapEntries()).toEqual([20, -(U - 84), -48, 16]);
    expect(d.contig_hint).toBe(20);
  });

  it('fails when alignment leaves no fit, and records the real largest area', () => {
    //   [ -4 | 20 free | -(rest) ]  alloc 20 align 8: head 4 + 20 > 20
    const c = chunkWith(pc, [-4, 20, -(U - 24)], 500);
    expect(pc.pcpu_alloc_area(c, 20, 8)).toBe(-1);
    expect(c.mapEntries()).toEqual([-4, 20, -(U - 24)]);
    expect(c.contig_hint).toBe(20);
  });
});

describe('pcpu_free_area', () => {
  const { pc } = boot();

  it('merges with both free neighbours', () => {
    //   [ 16 free | -32 | 16 free | -(rest) ]  free 16  ->  [ 64 free | -(rest) ]
    const c = chunkWith(pc, [16, -32, 16, -(U - 64)]);
    pc.pcpu_free_area(c, 16);
    expect(c.mapEntries()).toEqual([64, -(U - 64)]);
    expect(c.free_size).toBe(64);
    expect(c.contig_hint).toBe(64);
  });

  it('merges with the previous free area only', () => {
    const c = chunkWith(pc, [16, -32, -(U - 48)]);
    pc.pcpu_free_area(c, 16);
    expect(c.mapEntries()).toEqual([48, -(U - 48)]);
  });

  it('merges with the next free area only', () => {
    const c = chunkWith(pc, [-16, -32, 100, -(U - 148)]);
    pc.pcpu_free_area(c, 16);
    expect(c.mapEntries()).toEqual([-16, 132, -(U - 148)]);
  });

  it('refuses a double free and a free inside an area, changing nothing', () => {
    const c = chunkWith(pc, [16, -32, -(U - 48)]);
    expect(() => pc.pcpu_free_area(c, 0)).toThrow(/offset 0 is already free/);
    expect(() => pc.pcpu_free_area(c, 20)).toThrow(/offset 20 is not the start of an area/);
    expect(() => pc.pcpu_free_area(c, U)).toThrow(/not the start of an area/);
    expect(c.mapEntries()).toEqual([16, -32, -(U - 48)]);
    expect(c.free_size).toBe(16);
  });
});
