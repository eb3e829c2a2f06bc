/**
 * Slots: chunks are listed by free size, fullest first; a chunk that moves up goes to the
 * front of its new list, one that moves down to the back; new chunks join the front of the
 * last slot.
 */
import { describe, expect, it } from 'vitest';
import { alloc, boot, expectConsistent, free } from '../helpers.ts';

describe('slots', () => {
  it('maps sizes to slots by fls(size) - 3, with 1-15 in slot 1 and the unit size last', () => {
    const { pc } = boot();
    expect(pc.pcpu_nr_slots).toBe(16); // fls(65536) = 17 -> 14, plus the last slot, plus one
    expect([1, 15, 16, 31, 32, 4095, 4096, 65535].map((s) => pc.pcpu_size_to_slot(s))).toEqual([
      1, 1, 2, 2, 3, 9, 10, 13,
    ]);
    expect(pc.pcpu_size_to_slot(65536)).toBe(15);
  });

  it('puts the first chunk on the slot of its dynamic size and the reserved chunk nowhere', () => {
    const { pc } = boot();
    const lists = pc.slotLists().map((l) => l.map((c) => c.id));
    expect(lists[pc.__pcpu_size_to_slot(20960)]).toEqual([0]);
    expect(lists.flat()).toEqual([0]);
  });

  it('links a new chunk at the front of the last slot, then moves it by its free size', () => {
    const { pc } = boot();
    const big = alloc(pc, 30000, 8); // does not fit the first chunk: chunk 1
    expect([big.chunk!.id, big.off]).toEqual([1, 0]);
    // chunk 1 now has 35536 free: slot fls(35536)-3 = 13
    expect(pc.slotLists()[13]!.map((c) => c.id)).toEqual([1]);
    expectConsistent(pc);
  });

  it('moves a chunk to the front when it gains and to the back when it loses', () => {
    const { pc } = boot();
    const a = alloc(pc, 40000, 8); // chunk 1: 25536 free, slot 12
    const b = alloc(pc, 40000, 8); // chunk 2: 25536 free, slot 12
    expect([a.chunk!.id, b.chunk!.id]).toEqual([1, 2]);
    // the first chunk (20960 free) is on slot 12 too; both new chunks moved down from the
    // last slot, so each went to the back
    expect(pc.slotLists()[12]!.map((c) => c.id)).toEqual([0, 1, 2]);
    const c = alloc(pc, 21000, 8); // too big for the first chunk; chunk 1 is next and takes it
    expect([c.chunk!.id, c.off]).toEqual([1, 40000]);
    // chunk 1 dropped to slot 10 (4536 free)
    expect(pc.slotLists()[10]!.map((x) => x.id)).toEqual([1]);
    expect(pc.slotLists()[12]!.map((x) => x.id)).toEqual([0, 2]);
    free(pc, c.ptr); // back up to slot 12, at the front
    expect(pc.slotLists()[12]!.map((x) => x.id)).toEqual([1, 0, 2]);
    free(pc, a.ptr); // chunk 1 is empty: last slot
    expect(pc.slotLists()[15]!.map((x) => x.id)).toEqual([1]);
    expectConsistent(pc);
  });

  it('moves a chunk with no usable space to slot 0 and keeps walking with the saved next', () => {
    const { pc } = boot();
    // fill the first chunk exactly: dyn 20960 at 28192
    const f = alloc(pc, 20960, 1);
    expect([f.chunk!.id, f.off]).toEqual([0, 28192]);
    expect(pc.slotLists()[0]!.map((x) => x.id)).toEqual([0]);
    expectConsistent(pc);
  });
});
