/** struct pcpu_chunk, 2.6.36. */
import { ListHead } from './list.ts';

/** The chunk number of the static + reserved chunk when it serves only reserved requests. */
export const RESERVED_CHUNK_ID = -1;

let nextUid = 1;

/** Alignment classes of the failed-search memo: log2 of a power-of-two alignment, 1 to PAGE_SIZE. */
export const PCPU_ALIGN_CLASSES = 13;
/** A fail_size entry that records no failure. */
export const PCPU_NO_FAIL = 0x7fffffff;

export class PcpuChunk extends ListHead {
  /** a number no other chunk struct of this process ever has (ids are given late and restart per machine) */
  readonly uid = nextUid++;
  /** free bytes in the chunk */
  free_size = 0;
  /** an upper bound of the largest free area */
  contig_hint = 0;
  /** unit 0's address of the chunk; unit u lives at base_addr + pcpu_unit_offsets[cpu] */
  base_addr = 0;
  /** entries of `map` in use */
  map_used = 0;
  /** entries `map` has room for */
  map_alloc = 0;
  /** the area map: a positive entry is a free area of that size, a negative one is in use */
  map: Int32Array;
  /** backend data: vm areas (percpu-vm) or the first pfn of the block (percpu-km) */
  data: unknown = null;
  /** no [de]population: the first chunk */
  immutable = false;
  /** one byte per unit page: 1 when that page is populated in every unit */
  populated: Uint8Array;
  /** the map is one of the __initdata early maps (until percpu_init_late) */
  early_map = false;
  /** on a slot list (set when first relocated, cleared when reclaim takes it off): for checkers */
  linked = false;
  /** pcpu_destroy_chunk() has run: any later use is a use after free */
  destroyed = false;
  /**
   * Not the kernel's: by alignment class, the smallest size a first-fit search of this map is
   * known to fail for since the map last changed: one more than the most room (size beyond
   * the head) any free area had in a search that failed. Fit needs map[i] >= head + size, and
   * a larger power-of-two alignment never makes a head smaller, so such a search fails again
   * for any request that large at that alignment or above, and changes nothing (its
   * contig_hint is exact already). Kept as a running minimum over the classes, so one entry
   * answers.
   */
  readonly fail_size = new Int32Array(PCPU_ALIGN_CLASSES).fill(PCPU_NO_FAIL);
  /** fail_size holds a failure */
  fail_known = false;
  /**
   * Not the kernel's: where a first-fit walk of the map may start. Every entry before map
   * index scan_i is in use, and entry scan_i starts at offset scan_off; a walk from 0 would
   * only add up those entries' sizes to get there (in-use areas are never candidates, nor
   * part of contig_hint), so starting here finds the same area and the same hints. Kept by
   * pcpu_alloc_area() and pcpu_free_area(), the only writers of a live map.
   */
  scan_i = 0;
  scan_off = 0;
  /**
   * Not the kernel's: the sum of the map's entries, or -1 before it is first needed. Splits
   * and merges keep it (they move bytes between neighbouring entries), so it is where the
   * last entry ends for the chunk's life, and pcpu_find_area() may walk back from there.
   */
  map_end = -1;
  /**
   * offsets of areas carved in the map whose population has not finished: for checkers. A
   * list, not a Set: it holds one offset at a time unless the mutex is broken, and every
   * allocation adds and removes one.
   */
  readonly populating: number[] = [];

  constructor(
    /** the chunk number: 0 for the first chunk, 1, 2, ... for created ones, never reused */
    public id: number,
    map: Int32Array,
    unitPages: number,
  ) {
    super();
    this.map = map;
    this.map_alloc = map.length;
    this.populated = new Uint8Array(unitPages);
  }

  /** The live map entries (a copy), for reports and tests. */
  mapEntries(): number[] {
    return Array.from(this.map.subarray(0, this.map_used));
  }
}
