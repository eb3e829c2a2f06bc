/**
 * The shortcuts of the map walks that are not the kernel's, which must leave exactly what the
 * kernel's full walks leave: the failed-search memo (PcpuChunk.fail_size: a search known to
 * fail returns -1 without scanning), the walk's start past the leading entries in use
 * (PcpuChunk.scan_i, also used by pcpu_find_area()), and pcpu_find_area()'s walk back from
 * the map's end (PcpuChunk.map_end). Checked by hand on one map, then on random traces
 * against the same replay with every walk made in full from entry 0.
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

/** What PcpuChunk.scan_i promises: every entry before it is in use, and it starts at scan_off. */
function scanStartHolds(c: PcpuChunk): string | null {
  let off = 0;
  for (let i = 0; i < c.scan_i; i++) {
    if (c.map[i]! > 0) return `chunk ${c.id}: entry ${i} is free, before scan_i ${c.scan_i}`;
    off -= c.map[i]!;
  }
  if (c.scan_i > c.map_used) return `chunk ${c.id}: scan_i ${c.scan_i} is past map_used ${c.map_used}`;
  let end = 0;
  for (let i = 0; i < c.map_used; i++) end += Math.abs(c.map[i]!);
  if (c.map_end !== -1 && c.map_end !== end) return `chunk ${c.id}: map_end ${c.map_end}, the entries end at ${end}`;
  return off === c.scan_off ? null : `chunk ${c.id}: entry ${c.scan_i} starts at ${off}, scan_off says ${c.scan_off}`;
}

function replay(lines: string[], fullSearch: boolean): { out: string[]; maps: string } {
  let booted: Percpu | null = null;
  const chunksOf = (pc: Percpu) => [...pc.chunks.values(), ...(pc.pcpu_reserved_chunk ? [pc.pcpu_reserved_chunk] : [])];
  const r = new Replayer({
    memoryBytes: 256 << 20,
    onBoot: (pc) => {
      booted = pc;
      if (!fullSearch) return;
      const search = pc.pcpu_alloc_area.bind(pc);
      const find = pc.pcpu_find_area.bind(pc);
      const fromZero = (c: PcpuChunk) => {
        c.scan_i = 0;
        c.scan_off = 0;
      };
      pc.pcpu_alloc_area = (c, size, align) => {
        c.fail_size.fill(PCPU_NO_FAIL);
        c.fail_known = false;
        fromZero(c);
        return search(c, size, align);
      };
      // the kernel's walk from entry 0, written here: the traces free only live areas
      pc.pcpu_find_area = (c, freeme) => {
        let i = 0;
        let off = 0;
        while (i < c.map_used && off < freeme) off += Math.abs(c.map[i++]!);
        if (off !== freeme || i === c.map_used || c.map[i]! > 0) return find(c, freeme); // its messages
        return i;
      };
    },
  });
  const out = lines.map((l, n) => {
    const o = r.step(l, n + 1)!;
    if (!fullSearch && booted)
      for (const c of chunksOf(booted)) {
        const broken = scanStartHolds(c);
        if (broken) expect.fail(`after line ${n + 1}: ${broken}`);
      }
    return o;
  });
  const pc = booted! as Percpu;
  const maps = chunksOf(pc)
    .map((c) => `${c.id}: ${c.contig_hint} ${c.free_size} ${c.mapEntries().join(',')}`)
    .join('\n');
  return { out, maps };
}

describe('replay with the shortcuts against replay with every walk in full', () => {
  it.each([1, 2, 3, 4])('random trace %i', (seed) => {
    const lines = alignTrace(seed, 6000);
    const fast = replay(lines, false);
    const full = replay(lines, true);
    for (let i = 0; i < lines.length; i++) if (fast.out[i] !== full.out[i]) expect(fast.out[i]).toBe(full.out[i]);
    expect(fast.maps).toBe(full.maps);
  });
});
