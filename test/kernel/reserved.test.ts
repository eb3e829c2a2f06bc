/**
 * The reserved chunk (seed 000): module static percpu areas come from the area right after
 * the kernel's static one, never from dynamic chunks while a reserved chunk exists.
 */
import { describe, expect, it } from 'vitest';
import { alloc, boot, expectConsistent, free, mapOf } from '../helpers.ts';

describe('reserved allocation', () => {
  it('serves reserved requests from the reserved chunk, right after the static area', () => {
    const { pc } = boot();
    const a = alloc(pc, 100, 8, true);
    const b = alloc(pc, 64, 64, true);
    expect([a.off, b.off]).toEqual([20000, 20160]);
    //   [ -20000 static | -100 A | 60 free (head) | -64 B | rest free ]
    expect(mapOf(pc.pcpu_reserved_chunk)).toEqual([-20000, -100, 60, -64, 8192 - 224]);
    expectConsistent(pc);
  });

  it('does not fall back to dynamic chunks when the reserved chunk is full', () => {
    const { pc } = boot();
    expect(alloc(pc, 8192, 8, true).off).toBe(20000);
    const r = alloc(pc, 4, 4, true);
    expect(r).toMatchObject({ ptr: 0, error: 'alloc from reserved chunk failed' });
    expect(pc.chunks.size).toBe(1);
    expect(pc.dmesg).toContain('PERCPU: allocation failed, size=4 align=4, alloc from reserved chunk failed');
  });

  it('fails a request larger than contig_hint without scanning', () => {
    const { pc } = boot();
    expect(alloc(pc, 9000, 8, true).error).toBe('alloc from reserved chunk failed');
  });

  it('serves reserved requests from the dynamic area when nothing is reserved', () => {
    const { pc } = boot({ reserved_size: 0 });
    expect(pc.pcpu_reserved_chunk).toBeNull();
    const r = alloc(pc, 100, 8, true);
    expect([r.chunk!.id, r.off]).toEqual([0, 20000]);
  });

  it('frees reserved areas back to the reserved chunk', () => {
    const { pc } = boot();
    const a = alloc(pc, 100, 8, true);
    expect(free(pc, a.ptr)).toBe(pc.pcpu_reserved_chunk);
    expect(mapOf(pc.pcpu_reserved_chunk)).toEqual([-20000, 8192]);
    expectConsistent(pc);
  });
});
