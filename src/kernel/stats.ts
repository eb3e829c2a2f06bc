/**
 * A percpu_stats dump (mm/percpu-stats.c, CONFIG_PERCPU_STATS) adapted to the area map:
 * Allocation Info, Global Stats and Per Chunk Stats, every value line as "  %-20s: %12lld".
 * Fragmentation counts only up to a chunk's last allocation, as the kernel's does.
 * Reads the allocator under (the equivalent of) pcpu_lock; changes nothing.
 */
import type { PcpuChunk } from './chunk.ts';
import { PAGE_SIZE } from './constants.ts';
import { type Percpu, chunkName } from './percpu.ts';

export interface ChunkStats {
  chunk: string;
  slot: number;
  nr_alloc: number;
  max_alloc_size: number;
  empty_pop_pages: number;
  first_free: number;
  free_bytes: number;
  contig_bytes: number;
  map_used: number;
  map_alloc: number;
  sum_frag: number;
  max_frag: number;
  cur_min_alloc: number;
  cur_med_alloc: number;
  cur_max_alloc: number;
}

export interface PercpuStatsReport {
  allocation: Record<'unit_size' | 'static_size' | 'reserved_size' | 'dyn_size' | 'atom_size' | 'alloc_size', number>;
  global: Record<
    | 'nr_alloc'
    | 'nr_dealloc'
    | 'nr_cur_alloc'
    | 'nr_max_alloc'
    | 'nr_chunks'
    | 'nr_max_chunks'
    | 'min_alloc_size'
    | 'max_alloc_size'
    | 'empty_pop_pages'
    | 'populated_pages'
    | 'meta_bytes',
    number
  >;
  chunks: ChunkStats[];
}

/** Statistics of one chunk. */
export function chunkStats(pc: Percpu, chunk: PcpuChunk, slot: number): ChunkStats {
  const map = chunk.map;
  // the first chunk's head entry is the static (and reserved) area, not an allocation
  const skipHead = chunk === pc.pcpu_first_chunk || chunk === pc.pcpu_reserved_chunk;
  let last_alloc = -1;
  for (let i = chunk.map_used - 1; i >= (skipHead ? 1 : 0); i--)
    if (map[i]! < 0) {
      last_alloc = i;
      break;
    }
  const sizes: number[] = [];
  let nr_alloc = 0;
  let first_free = -1;
  let off = 0;
  const usedPage = new Uint8Array(pc.pcpu_unit_pages);
  for (let i = 0; i < chunk.map_used; off += Math.abs(map[i++]!)) {
    const e = map[i]!;
    if (e > 0 && first_free < 0) first_free = off;
    if (skipHead && i === 0) continue;
    if (e < 0) {
      nr_alloc++;
      for (let p = Math.floor(off / PAGE_SIZE); p < Math.ceil((off - e) / PAGE_SIZE); p++) usedPage[p] = 1;
    }
    if (i <= last_alloc) sizes.push(-e); // allocations positive, free fragments negative
  }
  sizes.sort((a, b) => a - b);
  let i = 0;
  let sum_frag = 0;
  let max_frag = 0;
  for (; i < sizes.length && sizes[i]! < 0; i++) {
    sum_frag -= sizes[i]!;
    max_frag = Math.max(max_frag, -sizes[i]!);
  }
  let empty_pop_pages = 0;
  if (!chunk.immutable)
    for (let p = 0; p < pc.pcpu_unit_pages; p++) if (chunk.populated[p] && !usedPage[p]) empty_pop_pages++;
  const allocs = sizes.length - i;
  return {
    chunk: chunkName(chunk),
    slot,
    nr_alloc,
    max_alloc_size: allocs ? sizes[sizes.length - 1]! : 0,
    empty_pop_pages,
    first_free,
    free_bytes: chunk.free_size,
    contig_bytes: chunk.contig_hint,
    map_used: chunk.map_used,
    map_alloc: chunk.map_alloc,
    sum_frag,
    max_frag,
    cur_min_alloc: allocs ? sizes[i]! : 0,
    cur_med_alloc: allocs ? sizes[Math.floor((i + sizes.length - 1) / 2)]! : 0,
    cur_max_alloc: allocs ? sizes[sizes.length - 1]! : 0,
  };
}

/** Gathers the whole report. */
export function percpuStats(pc: Percpu): PercpuStatsReport {
  const chunks: ChunkStats[] = [];
  if (pc.pcpu_reserved_chunk) chunks.push(chunkStats(pc, pc.pcpu_reserved_chunk, -1));
  pc.slotLists().forEach((list, slot) => {
    for (const c of list) chunks.push(chunkStats(pc, c, slot));
  });
  let populated_pages = 0;
  for (const c of pc.chunks.values())
    if (!c.immutable) for (let p = 0; p < pc.pcpu_unit_pages; p++) populated_pages += c.populated[p]! * pc.nr_cpu_ids;
  const s = pc.stats;
  return {
    allocation: {
      unit_size: pc.pcpu_unit_size,
      static_size: pc.pcpu_static_size,
      reserved_size: pc.pcpu_reserved_size,
      dyn_size: pc.pcpu_dyn_size,
      atom_size: pc.pcpu_atom_size,
      alloc_size: pc.pcpu_alloc_size,
    },
    global: {
      nr_alloc: s.nr_alloc,
      nr_dealloc: s.nr_dealloc,
      nr_cur_alloc: s.nr_cur_alloc,
      nr_max_alloc: s.nr_max_alloc,
      nr_chunks: s.nr_chunks,
      nr_max_chunks: s.nr_max_chunks,
      min_alloc_size: s.min_alloc_size,
      max_alloc_size: s.max_alloc_size,
      empty_pop_pages: chunks.reduce((a, c) => a + c.empty_pop_pages, 0),
      populated_pages,
      meta_bytes: pc.meta_bytes,
    },
    chunks,
  };
}

const P = (k: string, v: number): string => `  ${k.padEnd(20)}: ${String(v).padStart(12)}`;
const RULE = '----------------------------------------';

/** The dump as text, section by section like /sys/kernel/debug/percpu_stats. */
export function formatPercpuStats(r: PercpuStatsReport): string {
  const lines = ['Percpu Memory Statistics', 'Allocation Info:', RULE];
  for (const [k, v] of Object.entries(r.allocation)) lines.push(P(k, v));
  lines.push('', 'Global Stats:', RULE);
  for (const [k, v] of Object.entries(r.global)) lines.push(P(k, v));
  lines.push('', 'Per Chunk Stats:', RULE);
  for (const c of r.chunks) {
    const title =
      c.chunk === 'reserved'
        ? 'Chunk: <- Reserved Chunk'
        : c.chunk === '0'
          ? 'Chunk: <- First Chunk'
          : `Chunk: ${c.chunk}`;
    lines.push(title);
    const { chunk: _n, ...rest } = c;
    for (const [k, v] of Object.entries(rest)) lines.push(P(k, v));
    lines.push('');
  }
  return lines.join('\n');
}
