/**
 * The failed-search memo of pcpu_alloc_area() (PcpuChunk.fail_size): a search known to fail
 * returns -1 without scanning, and must leave exactly what a full scan leaves. Checked by
 * hand on one map, then on random traces against the same replay with every search made in
 * full.
 */
import { describe, expect, it } from 'vitest';
import { PCPU_NO_FAIL, type PcpuChunk } from '../../src/kernel/chunk.ts';
import type { Percpu } from '../../src/kernel/percpu.ts';
import { Replayer } from '../../src/trace/replay.ts';
import { Prng } from '../../src/util/prng.ts';
import { boot } from '../helpers.ts';

const U = 65536;

describe('the failed-search memo', () => {
  const { pc } = boot();

  function chunkWith(entries: number[]): PcpuChunk {
    const c = pc.pcpu_alloc_chunk()!;
    c.map.set(entries);
    c.map_used = entries.length;
    c.free_size = entries.filter((e) => e > 0).reduce((a, b) => a + b, 0);
    c.contig_hint = Math.max(0, ...entries);
    return c;
  }

  it('refuses larger and more aligned requests after a failure, and only those', () => {
    //   [ -100 | 3000 free | -(U - 3100) ]: 3000 bytes at offset 100
    const c = chunkWith([-100, 3000, -(U - 3100)]);
    c.contig_hint = 5000; // stale, as the kernel allows: a failed search makes it exact
    // a 1024-aligned head is 924: 2500 bytes do not fit
    expect(pc.pcpu_alloc_area(c, 2500, 1024)).toBe(-1);
    expect(c.contig_hint).toBe(3000);
    // the area had 3000 - 924 bytes of room at that alignment: 2077 fits nowhere
    expect(Array.from(c.fail_size)).toEqual([...Array(10).fill(PCPU_NO_FAIL), 2077, 2077, 2077]);
    expect(pc.pcpu_alloc_area(c, 2600, 4096)).toBe(-1);
    expect(pc.pcpu_alloc_area(c, 2077, 2048)).toBe(-1);
    expect(pc.pcpu_alloc_area(c, 2077, 1024)).toBe(-1);
    expect(c.mapEntries()).toEqual([-100, 3000, -(U - 3100)]);
    expect(c.contig_hint).toBe(3000);
    expect(c.fail_known).toBe(true);
    // less aligned: searched, and it fits (head 156 to offset 256)
    expect(pc.pcpu_alloc_area(c, 2500, 256)).toBe(256);
    expect(c.mapEntries()).toEqual([-100, 156, -2500, 344, -(U - 3100)]);
    expect(c.fail_known).toBe(false);
    expect(Array.from(c.fail_size)).toEqual(Array(13).fill(PCPU_NO_FAIL));
  });

  it('keeps no failure of an alignment that is not a power of two', () => {
    const c = chunkWith([-101, 3000, -(U - 3101)]);
    // align 5 rounds 101 + 4 with mask 4: head 4
    expect(pc.pcpu_alloc_area(c, 2997, 5)).toBe(-1);
    expect(c.fail_known).toBe(false);
    expect(pc.pcpu_alloc_area(c, 2998, 8)).toBe(-1);
    expect(c.fail_size[3]).toBe(2998);
    // head 1 goes to the area before
    expect(pc.pcpu_alloc_area(c, 2998, 2)).toBe(102);
  });

  it('forgets its failures when an area is freed', () => {
    const c = chunkWith([-100, 3000, -4000, -(U - 7100)]);
    expect(pc.pcpu_alloc_area(c, 4000, 8)).toBe(-1);
    expect(c.fail_known).toBe(true);
    pc.pcpu_free_area(c, 3100);
    expect(c.fail_known).toBe(false);
    expect(pc.pcpu_alloc_area(c, 4000, 8)).toBe(104);
  });
});

/** A trace of small areas at large alignments over many chunks, where most searches fail. */
function alignTrace(seed: number, ops: number): string[] {
  const r = new Prng(seed);
  const lines = ['{"op":"boot","static_size":20000,"reserved_size":8192,"dyn_size":20480}'];
  lines.push('{"op":"slab_online"}', '{"op":"init_late"}');
  const live: number[] = [];
  for (let i = 0; i < ops; i++) {
    if (live.length && r.chance(0.45)) {
      const k = r.int(0, live.length - 1);
      lines.push(`{"op":"free","id":"a${live[k]}"}`);
      live[k] = live[live.length - 1]!;
      live.pop();
    } else {
      live.push(i);
      const align = r.chance(0.05) ? r.int(1, 4096) : 1 << r.int(0, 12);
      const reserved = r.chance(0.05) ? ',"reserved":true' : '';
      lines.push(
        `{"op":"alloc","id":"a${i}","size":${r.int(1, r.chance(0.1) ? 9000 : 300)},"align":${align}${reserved}}`,
      );
    }
  }
  return lines;
}

function replay(lines: string[], fullSearch: boolean): { out: string[]; maps: string } {
  let booted: Percpu | null = null;
  const r = new Replayer({
    memoryBytes: 256 << 20,
    onBoot: (pc) => {
      booted = pc;
      if (!fullSearch) return;
      const search = pc.pcpu_alloc_area.bind(pc);
      pc.pcpu_alloc_area = (c, size, align) => {
        c.fail_size.fill(PCPU_NO_FAIL);
        c.fail_known = false;
        return search(c, size, align);
      };
    },
  });
  const out = lines.map((l, n) => r.step(l, n + 1)!);
  const pc = booted! as Percpu;
  const chunks = [...pc.chunks.values(), ...(pc.pcpu_reserved_chunk ? [pc.pcpu_reserved_chunk] : [])];
  const maps = chunks.map((c) => `${c.id}: ${c.contig_hint} ${c.free_size} ${c.mapEntries().join(',')}`).join('\n');
  return { out, maps };
}

describe('replay with the memo against replay with every search in full', () => {
  it.each([1, 2, 3, 4])('random trace %i', (seed) => {
    const lines = alignTrace(seed, 6000);
    const fast = replay(lines, false);
    const full = replay(lines, true);
    for (let i = 0; i < lines.length; i++) if (fast.out[i] !== full.out[i]) expect(fast.out[i]).toBe(full.out[i]);
    expect(fast.maps).toBe(full.maps);
  });
});
