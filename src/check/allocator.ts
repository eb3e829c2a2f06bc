/**
 * The allocator checker: every invariant the area-map allocator keeps, checked from scratch
 * against the live state. It only reads; it never repairs. Call it whenever pcpu_lock would
 * be free (between operations, or at a sleeping point of an allocation).
 *
 * The map is the subject here, so it is read; but every expectation is computed by the
 * checker itself (the slot a chunk belongs on, the map's extent), never with the allocator's
 * own functions. The most specific invariant comes first, so that a free that forgot to merge
 * is reported as two adjacent free areas rather than as a wrong hint.
 */
import { PAGE_SIZE, PFN_DOWN, PFN_UP, PCPU_SLOT_BASE_SHIFT, order_base_2 } from '../kernel/constants.ts';
import type { PcpuChunk } from '../kernel/chunk.ts';
import { type Percpu, chunkName } from '../kernel/percpu.ts';

export type AllocatorInvariant =
  | 'map-extent' // the map's entries add up to the chunk's extent
  | 'map-shape' // map_used/map_alloc/entries are well formed
  | 'adjacent-free' // two free areas side by side: a free that did not merge
  | 'free-size' // free_size equals the sum of free entries
  | 'contig-hint' // contig_hint is at least the largest free entry
  | 'slot' // the chunk sits on the list pcpu_chunk_slot() names, exactly once
  | 'reserved-listed' // the reserved chunk is on a slot list
  | 'unpopulated-area' // a live area has a page that is not populated in some unit
  | 'page-accounting'; // pages in use differ from populated pages plus metadata

export interface AllocatorViolation {
  invariant: AllocatorInvariant;
  chunk: string;
  message: string;
}

/** The bytes a chunk's map covers: a whole unit, or the first chunk's share of it. */
export function chunkExtent(pc: Percpu, chunk: PcpuChunk): number {
  if (chunk === pc.pcpu_reserved_chunk) return pc.pcpu_reserved_chunk_limit;
  if (chunk === pc.pcpu_first_chunk) return pc.pcpu_static_size + pc.pcpu_reserved_size + pc.pcpu_dyn_size;
  return pc.pcpu_unit_size;
}

/**
 * The slot a chunk with these sizes belongs on, computed here from the 2.6.36 rule: slot 0
 * for chunks that can serve nothing, the last slot for a wholly free chunk, else by the
 * highest set bit of the free size.
 */
export function expectedSlot(free_size: number, contig_hint: number, unit_size: number, nr_slots: number): number {
  if (free_size < 4 || contig_hint < 4) return 0;
  if (free_size === unit_size) return nr_slots - 1;
  const highest = 32 - Math.clz32(free_size);
  return Math.max(highest - PCPU_SLOT_BASE_SHIFT + 2, 1);
}

/** Checks every chunk and the slot lists. Returns the violations (empty when all hold). */
export function checkAllocator(pc: Percpu, opts: { populated?: boolean } = {}): AllocatorViolation[] {
  const out: AllocatorViolation[] = [];
  const v = (invariant: AllocatorInvariant, chunk: PcpuChunk | null, message: string): void => {
    out.push({ invariant, chunk: chunk ? chunkName(chunk) : '-', message });
  };
  if (!pc.is_setup) return out;

  const all: PcpuChunk[] = [...pc.chunks.values()];
  if (pc.pcpu_reserved_chunk) all.push(pc.pcpu_reserved_chunk);

  for (const chunk of all) {
    const map = chunk.map;
    if (chunk.map_alloc !== map.length)
      v('map-shape', chunk, `map_alloc ${chunk.map_alloc} but the map has ${map.length} entries`);
    if (chunk.map_used < 1 || chunk.map_used > chunk.map_alloc)
      v('map-shape', chunk, `map_used ${chunk.map_used} outside [1, map_alloc ${chunk.map_alloc}]`);
    let sum = 0;
    let free = 0;
    let largest = 0;
    for (let i = 0; i < chunk.map_used; i++) {
      const e = map[i]!;
      if (e === 0) v('map-shape', chunk, `map[${i}] is 0`);
      if (e > 0 && i > 0 && map[i - 1]! > 0)
        v(
          'adjacent-free',
          chunk,
          `map[${i - 1}] and map[${i}] are free areas side by side (${map[i - 1]} and ${e} bytes): a free did not merge`,
        );
      sum += Math.abs(e);
      if (e > 0) {
        free += e;
        largest = Math.max(largest, e);
      }
    }
    const extent = chunkExtent(pc, chunk);
    if (sum !== extent) v('map-extent', chunk, `map sums to ${sum}, extent is ${extent}`);
    if (free !== chunk.free_size) v('free-size', chunk, `free_size ${chunk.free_size}, free entries sum to ${free}`);
    if (chunk.contig_hint < largest)
      v('contig-hint', chunk, `contig_hint ${chunk.contig_hint} < largest free area ${largest}`);
    if (opts.populated !== false) checkPopulated(pc, chunk, v);
  }

  // slot lists: every listed chunk is live, on its own slot, once; the reserved chunk nowhere
  const seen = new Map<PcpuChunk, number>();
  pc.slotLists().forEach((list, slot) => {
    for (const c of list) {
      if (c === pc.pcpu_reserved_chunk) v('reserved-listed', c, `the reserved chunk is on slot ${slot}`);
      if (seen.has(c)) v('slot', c, `listed on slot ${seen.get(c)} and slot ${slot}`);
      seen.set(c, slot);
      const want = expectedSlot(c.free_size, c.contig_hint, pc.pcpu_unit_size, pc.pcpu_nr_slots);
      if (want !== slot)
        v(
          'slot',
          c,
          `on slot ${slot}, but free_size ${c.free_size} and contig_hint ${c.contig_hint} belong on slot ${want}`,
        );
    }
  });
  for (const c of pc.chunks.values()) {
    if (!seen.has(c) && c.linked) v('slot', c, 'a linked chunk is on no slot list');
    if (seen.has(c) && !c.linked) v('slot', c, 'a chunk taken off for reclaim is still on a slot list');
  }
  return out;
}

function checkPopulated(
  pc: Percpu,
  chunk: PcpuChunk,
  v: (i: AllocatorInvariant, c: PcpuChunk, m: string) => void,
): void {
  const access = pc.machine.access;
  const map = chunk.map;
  let off = 0;
  for (let i = 0; i < chunk.map_used; off += Math.abs(map[i++]!)) {
    // free, or carved and still being populated by an allocation that has not returned
    if (map[i]! > 0 || chunk.populating.includes(off)) continue;
    const size = -map[i]!;
    for (let p = PFN_DOWN(off); p < PFN_UP(off + size); p++) {
      if (!chunk.populated[p]) {
        v('unpopulated-area', chunk, `area at ${off} (+${size}) has page ${p} unpopulated`);
        return;
      }
      for (let cpu = 0; cpu < pc.nr_cpu_ids; cpu++)
        if (access.translate(pc.pcpu_chunk_addr(chunk, cpu, p)) < 0) {
          v('unpopulated-area', chunk, `area at ${off} (+${size}): page ${p} of cpu ${cpu}'s unit does not translate`);
          return;
        }
    }
  }
}

/**
 * Page accounting: the pages the page allocator has handed out equal the pages the chunks
 * hold (populated pages in every unit for percpu-vm, whole blocks for percpu-km) plus
 * `otherPages` that the caller knows about. Returns a violation or null.
 */
export function checkPageAccounting(pc: Percpu, otherPages = 0): AllocatorViolation | null {
  const b = pc.machine.buddy;
  if (!pc.machine.memblock.handedOver) return null;
  const inUse = b.totalManaged() - b.totalFree();
  let held = 0;
  for (const c of pc.chunks.values()) {
    if (c.immutable) continue;
    if (pc.backend.name === 'km') held += 1 << order_base_2(pc.pcpu_group_sizes[0]! / PAGE_SIZE);
    else for (let p = 0; p < pc.pcpu_unit_pages; p++) if (c.populated[p]) held += pc.nr_cpu_ids;
  }
  if (inUse === held + otherPages) return null;
  return {
    invariant: 'page-accounting',
    chunk: '-',
    message: `${inUse} pages in use, chunks hold ${held}, others ${otherPages}`,
  };
}
