/**
 * What must hold of the model's state between whole operations, each stated from the data
 * alone (no model function recomputes its own answer except the slot rule, restated here).
 */
import {
  PAGE_SIZE,
  PCPU_DFL_MAP_ALLOC,
  PERCPU_DYNAMIC_EARLY_SLOTS,
  type PercpuModel,
  RESERVED,
  SIZEOF_INT,
  areasOf,
} from './percpu.ts';

/** Every invariant that fails, in words; empty when all hold. */
export function modelInvariants(m: PercpuModel): string[] {
  const out: string[] = [];
  const unit = m.layout.unitSize;
  for (const c of m.chunks.values()) {
    const name = c.id === RESERVED ? 'the reserved chunk' : `chunk ${c.id}`;
    const bad = (what: string): number => out.push(`${name}: ${what}`);
    let off = 0;
    let free = 0;
    let largest = 0;
    if (c.sizes.length !== c.offs.length || c.free.length !== c.offs.length)
      bad(`the map's lists disagree: ${c.offs.length} offsets, ${c.sizes.length} sizes, ${c.free.length} flags`);
    const areas = areasOf(c);
    areas.forEach((a, i) => {
      if (a.off !== off) bad(`area ${i} starts at ${a.off}, not ${off} where the one before ends`);
      if (!(a.size > 0)) bad(`area ${i} has size ${a.size}`);
      if (a.free && areas[i + 1]?.free) bad(`areas ${i} and ${i + 1} are both free: a free did not merge`);
      if (a.free) {
        free += a.size;
        largest = Math.max(largest, a.size);
      } else if (!c.populated[Math.floor(a.off / PAGE_SIZE)])
        bad(`the area at ${a.off} is in use on a page never populated`);
      off += a.size;
    });
    if (off !== c.extent) bad(`the areas cover ${off} bytes of ${c.extent}`);
    if (c.freeSize !== free) bad(`free_size ${c.freeSize} but the free areas add up to ${free}`);
    if (c.contigHint < largest) bad(`contig_hint ${c.contigHint} is below the largest free area, ${largest}`);
    if (areas.length > c.mapAlloc) bad(`${areas.length} areas in a map of ${c.mapAlloc} entries`);
    const doubled = c.mapAlloc >= PCPU_DFL_MAP_ALLOC && Number.isInteger(Math.log2(c.mapAlloc / PCPU_DFL_MAP_ALLOC));
    if (c.earlyMap ? c.mapAlloc !== PERCPU_DYNAMIC_EARLY_SLOTS : !doubled)
      bad(`a map of ${c.mapAlloc} entries is neither the early map nor ${PCPU_DFL_MAP_ALLOC} doubled`);
    if (c.immutable && (areas[0]!.free || c.populated.includes(false)))
      bad('the first chunk lost its static area or a page');
    if (c.id > 0 && c.extent !== unit) bad(`a created chunk covers ${c.extent} bytes, not the unit's ${unit}`);

    // the slot rule, restated: 0 when not even an int fits, the last one when wholly free
    const lists = m.slots.flatMap((list, slot) => list.filter((x) => x === c).map(() => slot));
    const want =
      c.freeSize < SIZEOF_INT || c.contigHint < SIZEOF_INT
        ? 0
        : c.freeSize === unit
          ? m.nrSlots - 1
          : Math.max(32 - Math.clz32(c.freeSize) - 3, 1);
    if (c.id === RESERVED) {
      if (lists.length) bad(`is on slot ${lists.join(', ')}: the reserved chunk is on no list`);
    } else if (lists.length !== 1 || lists[0] !== want)
      bad(`is on slot(s) [${lists.join(', ')}], belongs on slot ${want}`);
  }
  for (const list of m.slots)
    for (const c of list) if (m.chunks.get(c.id) !== c) out.push(`chunk ${c.id} is listed but not live`);
  return out;
}
