/**
 * The boot allocator (memblock/bootmem): node-local, aligned allocations from physical
 * memory before the page allocator exists, partial frees, and the hand-over of everything
 * still free to the buddy allocator at mm init. After the hand-over, memory it frees goes
 * straight back to the page allocator.
 */
import { MemError, checkInt, checkPow2 } from './errors.ts';
import { PAGE_SIZE } from './layout.ts';
import type { PhysMem } from './phys.ts';
import type { BuddyAllocator } from './buddy.ts';

export interface Range {
  start: number;
  end: number;
}

export class Memblock {
  /** free physical ranges, sorted, non-adjacent */
  private free: Range[];
  /** reserved (allocated) ranges, sorted */
  private reserved: Range[] = [];
  private buddy: BuddyAllocator | null = null;

  constructor(readonly mem: PhysMem) {
    this.free = [{ start: 0, end: mem.layout.memoryBytes }];
  }

  get handedOver(): boolean {
    return this.buddy !== null;
  }

  /**
   * Allocates `size` bytes aligned to `align` from `node`'s memory, lowest address first.
   * With `anyNode`, other nodes are tried in distance order. Returns the physical address, or
   * -1 when nothing fits (the _nopanic variants' NULL).
   */
  alloc(size: number, align: number, node: number, anyNode = false): number {
    const fn = 'memblock_alloc';
    if (this.buddy) throw new MemError('EBUSY', fn, 'state', 'the boot allocator was retired at mm init');
    checkInt(fn, 'size', size, 1, this.mem.layout.memoryBytes);
    checkPow2(fn, 'align', align);
    checkInt(fn, 'node', node, 0, this.mem.nodes - 1);
    const nodes = anyNode ? this.mem.fallbackOrder(node) : [node];
    for (const nid of nodes) {
      const lo = this.mem.nodeStartPfn(nid) * PAGE_SIZE;
      const hi = this.mem.nodeEndPfn(nid) * PAGE_SIZE;
      for (const r of this.free) {
        const start = Math.ceil(Math.max(r.start, lo) / align) * align;
        const end = start + size;
        if (end <= Math.min(r.end, hi)) {
          this.carve(start, end);
          insertMerged(this.reserved, { start, end }, false);
          return start;
        }
      }
    }
    return -1;
  }

  /**
   * Frees [phys, phys + size), which must lie inside what was allocated. A double or
   * overlapping free is refused and changes nothing.
   */
  freeRange(phys: number, size: number): void {
    const fn = 'memblock_free';
    checkInt(fn, 'phys', phys, 0, this.mem.layout.memoryBytes - 1);
    checkInt(fn, 'size', size, 0, this.mem.layout.memoryBytes - phys);
    if (size === 0) return;
    const end = phys + size;
    const r = this.reserved.find((x) => x.start <= phys && end <= x.end);
    if (!r)
      throw new MemError(
        'EBUSY',
        fn,
        'range',
        `[0x${phys.toString(16)}, 0x${end.toString(16)}) is not allocated (double or overlapping free)`,
      );
    if (this.buddy && (phys % PAGE_SIZE || size % PAGE_SIZE))
      throw new MemError('EINVAL', fn, 'range', 'must be page aligned after mm init');
    // split the reserved range
    const i = this.reserved.indexOf(r);
    const parts: Range[] = [];
    if (r.start < phys) parts.push({ start: r.start, end: phys });
    if (end < r.end) parts.push({ start: end, end: r.end });
    this.reserved.splice(i, 1, ...parts);
    if (this.buddy) this.buddy.addRange(phys / PAGE_SIZE, end / PAGE_SIZE);
    else insertMerged(this.free, { start: phys, end }, true);
  }

  /**
   * mm init: every whole free page goes to the buddy allocator, which from now on is the
   * only source of pages. Returns the number of pages handed over.
   */
  handOver(buddy: BuddyAllocator): number {
    if (this.buddy) throw new MemError('EBUSY', 'memblock_free_all', 'state', 'already handed over');
    let pages = 0;
    for (const r of this.free) {
      const s = Math.ceil(r.start / PAGE_SIZE);
      const e = Math.floor(r.end / PAGE_SIZE);
      if (e > s) {
        buddy.addRange(s, e);
        pages += e - s;
      }
    }
    this.free = [];
    this.buddy = buddy;
    return pages;
  }

  freeRanges(): Range[] {
    return this.free.map((r) => ({ ...r }));
  }

  reservedRanges(): Range[] {
    return this.reserved.map((r) => ({ ...r }));
  }

  private carve(start: number, end: number): void {
    const i = this.free.findIndex((r) => r.start <= start && end <= r.end);
    const r = this.free[i]!;
    const parts: Range[] = [];
    if (r.start < start) parts.push({ start: r.start, end: start });
    if (end < r.end) parts.push({ start: end, end: r.end });
    this.free.splice(i, 1, ...parts);
  }
}

/** Inserts a range into a sorted list; merges with adjacent ranges when `merge`. */
function insertMerged(list: Range[], r: Range, merge: boolean): void {
  let i = 0;
  while (i < list.length && list[i]!.start < r.start) i++;
  list.splice(i, 0, { ...r });
  if (!merge) return;
  if (i + 1 < list.length && list[i]!.end === list[i + 1]!.start) {
    list[i]!.end = list[i + 1]!.end;
    list.splice(i + 1, 1);
  }
  if (i > 0 && list[i - 1]!.end === list[i]!.start) {
    list[i - 1]!.end = list[i]!.end;
    list.splice(i, 1);
  }
}
