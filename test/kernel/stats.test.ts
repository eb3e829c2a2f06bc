/**
 * The percpu_stats dump: allocation info, global counters, and per-chunk figures with the
 * fragmentation measured up to each chunk's last allocation.
 */
import { describe, expect, it } from 'vitest';
import { chunkStats, formatPercpuStats, percpuStats } from '../../src/kernel/stats.ts';
import { alloc, boot, free } from '../helpers.ts';
import { runSync } from '../../src/sim/drive-sync.ts';

describe('percpu_stats', () => {
  it('reports the first chunk areas and fragments exactly', () => {
    const { pc } = boot();
    //   first chunk: [ -28192 | -16 A | 48 free | -64 B | -100 C | rest free ]
    const a = alloc(pc, 16, 8);
    const gap = alloc(pc, 48, 8);
    const b = alloc(pc, 64, 8);
    alloc(pc, 100, 4);
    free(pc, gap.ptr);
    expect([a.off, b.off]).toEqual([28192, 28256]);
    const s = chunkStats(pc, pc.pcpu_first_chunk!, 12);
    expect(s).toMatchObject({
      chunk: '0',
      nr_alloc: 3,
      first_free: 28208,
      free_bytes: 20960 - 180,
      sum_frag: 48,
      max_frag: 48,
      cur_min_alloc: 16,
      cur_med_alloc: 64,
      cur_max_alloc: 100,
      map_used: 6,
    });
  });

  it('counts allocations, chunks and populated pages globally, and prints the kernel layout', () => {
    const { pc } = boot();
    const big = alloc(pc, 40000, 8);
    alloc(pc, 8, 8, true);
    free(pc, big.ptr);
    const r = percpuStats(pc);
    expect(r.allocation).toEqual({
      unit_size: 65536,
      static_size: 20000,
      reserved_size: 8192,
      dyn_size: 20960,
      atom_size: 4096,
      alloc_size: 65536,
    });
    expect(r.global).toMatchObject({
      nr_alloc: 2,
      nr_dealloc: 1,
      nr_cur_alloc: 1,
      nr_max_alloc: 2,
      nr_chunks: 2,
      nr_max_chunks: 2,
      min_alloc_size: 8,
      max_alloc_size: 40000,
    });
    expect(r.global.populated_pages).toBe(10 * 4);
    expect(r.global.empty_pop_pages).toBe(10);
    expect(r.chunks.map((c) => c.chunk)).toEqual(['reserved', '0', '1']);
    const text = formatPercpuStats(r);
    expect(text.split('\n').slice(0, 4)).toEqual([
      'Percpu Memory Statistics',
      'Allocation Info:',
      '----------------------------------------',
      '  unit_size           :        65536',
    ]);
    expect(text).toContain('Chunk: <- Reserved Chunk');
    expect(text).toContain('Chunk: <- First Chunk');
  });

  it('returns page accounting exactly to its boot state once everything is freed and torn down', () => {
    const { m, pc } = boot();
    const bootFree = m.buddy.totalFree();
    const ptrs = [alloc(pc, 40000, 8), alloc(pc, 40000, 8), alloc(pc, 300, 8)].map((r) => r.ptr);
    for (const p of ptrs) free(pc, p);
    expect(m.buddy.totalFree()).toBeLessThan(bootFree); // reclaim spares one empty chunk
    expect(runSync(pc, pc.pcpu_teardown()).length).toBe(1);
    expect(m.buddy.totalFree()).toBe(bootFree);
    expect(m.vm.list()).toEqual([]);
  });
});
