/**
 * Reclaim: when a free empties a chunk and another empty chunk exists, the reclaim work
 * destroys every empty chunk except the first one on the last slot.
 */
import { describe, expect, it } from 'vitest';
import { alloc, boot, expectConsistent, free } from '../helpers.ts';

describe('pcpu_reclaim', () => {
  it('keeps the first empty chunk and destroys the others', () => {
    const { pc, m } = boot();
    const before = m.buddy.totalFree();
    const a = alloc(pc, 60000, 8);
    const b = alloc(pc, 60000, 8);
    const c = alloc(pc, 60000, 8);
    expect([a, b, c].map((r) => r.chunk!.id)).toEqual([1, 2, 3]);
    free(pc, a.ptr); // chunk 1 empty, alone on the last slot: nothing to reclaim
    expect([...pc.chunks.keys()]).toEqual([0, 1, 2, 3]);
    free(pc, b.ptr); // chunk 2 empty at the front of the last slot, chunk 1 behind it
    expect(pc.slotLists()[15]!.map((x) => x.id)).toEqual([2]);
    expect([...pc.chunks.keys()]).toEqual([0, 2, 3]);
    expect(pc.stats.nr_reclaimed).toBe(1);
    free(pc, c.ptr);
    expect([...pc.chunks.keys()]).toEqual([0, 3]);
    expectConsistent(pc);
    // chunk 3 keeps its populated pages: 15 pages (60000 bytes) in each of 4 units
    expect(before - m.buddy.totalFree()).toBe(15 * 4);
  });

  it('numbers chunks in creation order and never reuses a number', () => {
    const { pc } = boot();
    const a = alloc(pc, 60000, 8);
    const b = alloc(pc, 60000, 8);
    free(pc, a.ptr);
    free(pc, b.ptr); // reclaims chunk 1
    const c = alloc(pc, 60000, 8); // chunk 2 is empty and serves it
    const d = alloc(pc, 60000, 8);
    expect([c.chunk!.id, d.chunk!.id]).toEqual([2, 3]);
    expectConsistent(pc);
  });
});
