/**
 * The page allocator: a binary buddy allocator per node, orders 0..MAX_ORDER-1.
 *
 * Free blocks sit on per-node, per-order lists (head insertion, head removal, as the
 * kernel's free_area lists do), linked through two Int32 arrays indexed by pfn. Only the
 * allocator actor's thread calls into it, so its bookkeeping lives outside the shared buffer.
 */
import { MemError, checkInt } from './errors.ts';
import { MAX_ORDER } from './layout.ts';
import type { PhysMem } from './phys.ts';
import type { Prng } from '../util/prng.ts';

const NONE = -1;

export interface FaultInjection {
  /** fail the Nth call from now (1 = the next call) */
  failNth?: number;
  /** fail each call with this probability, drawn from `prng` */
  failRate?: number;
  prng?: Prng;
}

export class BuddyAllocator {
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** order of the free block that starts at pfn, or NONE */
  private readonly freeOrder: Int8Array;
  /** order of the allocated block that starts at pfn, or NONE */
  private readonly allocOrder: Int8Array;
  /** list heads, index node * MAX_ORDER + order */
  private readonly heads: Int32Array;
  /** number of free blocks, index node * MAX_ORDER + order */
  readonly nrFreeBlocks: Int32Array;
  /** free pages per node */
  readonly nrFree: Int32Array;
  /** pages ever handed to the allocator, per node (managed pages) */
  readonly managed: Int32Array;

  private injection: FaultInjection = {};
  /** whether any fault injection is set: the common case skips injectFault() altogether */
  private injecting = false;
  private calls = 0;
  /** sees every block given back, before it is free (the memory-management protocol checker) */
  onFree: ((pfn: number, order: number) => void) | null = null;

  constructor(readonly mem: PhysMem) {
    const n = mem.nrPages;
    this.next = new Int32Array(n).fill(NONE);
    this.prev = new Int32Array(n).fill(NONE);
    this.freeOrder = new Int8Array(n).fill(NONE);
    this.allocOrder = new Int8Array(n).fill(NONE);
    this.heads = new Int32Array(mem.nodes * MAX_ORDER).fill(NONE);
    this.nrFreeBlocks = new Int32Array(mem.nodes * MAX_ORDER);
    this.nrFree = new Int32Array(mem.nodes);
    this.managed = new Int32Array(mem.nodes);
  }

  /** Sets (or, with {}, clears) the seeded fault injection. The call count restarts. */
  setFaultInjection(f: FaultInjection): void {
    if (f.failNth !== undefined) checkInt('setFaultInjection', 'failNth', f.failNth, 1, 2 ** 31);
    if (f.failRate !== undefined) {
      if (!(f.failRate >= 0 && f.failRate <= 1))
        throw new MemError('EINVAL', 'setFaultInjection', 'failRate', `must be in [0, 1], got ${f.failRate}`);
      if (!f.prng) throw new MemError('EINVAL', 'setFaultInjection', 'prng', 'is required with failRate');
    }
    this.injection = f;
    this.injecting = f.failNth !== undefined || f.failRate !== undefined;
    this.calls = 0;
  }

  private injectFault(): boolean {
    this.calls++;
    const f = this.injection;
    if (f.failNth !== undefined && this.calls === f.failNth) return true;
    if (f.failRate !== undefined && f.prng!.chance(f.failRate)) return true;
    return false;
  }

  /**
   * Hands the page range [startPfn, endPfn) to the allocator as free memory, in the largest
   * naturally aligned blocks that fit (what __free_pages_bootmem does at mm init).
   */
  addRange(startPfn: number, endPfn: number): void {
    const fn = 'BuddyAllocator.addRange';
    checkInt(fn, 'startPfn', startPfn, 0, this.mem.nrPages);
    checkInt(fn, 'endPfn', endPfn, startPfn, this.mem.nrPages);
    for (let p = startPfn; p < endPfn; p++)
      if (this.freeOrder[p] !== NONE || this.allocOrder[p] !== NONE || this.isInsideFreeBlock(p))
        throw new MemError('EBUSY', fn, 'range', `page ${p} is already managed`);
    let pfn = startPfn;
    while (pfn < endPfn) {
      const node = this.mem.pfnToNid(pfn);
      const nodeEnd = Math.min(endPfn, this.mem.nodeEndPfn(node));
      let order = MAX_ORDER - 1;
      while (order > 0 && (pfn % (1 << order) !== 0 || pfn + (1 << order) > nodeEnd)) order--;
      this.managed[node]! += 1 << order;
      this.freeBlock(pfn, order, node);
      pfn += 1 << order;
    }
  }

  private isInsideFreeBlock(pfn: number): boolean {
    for (let o = 1; o < MAX_ORDER; o++) {
      const head = pfn & ~((1 << o) - 1);
      if (head !== pfn && this.freeOrder[head] === o) return true;
    }
    return false;
  }

  /**
   * alloc_pages_node(): 2^order contiguous pages, from `node` or the nearest node that has
   * them. Returns the first pfn, or -1 when no node can satisfy the request (or a fault is
   * injected).
   */
  allocPagesNode(node: number, order: number): number {
    const fn = 'alloc_pages_node';
    checkInt(fn, 'node', node, 0, this.mem.nodes - 1);
    checkInt(fn, 'order', order, 0, MAX_ORDER - 1);
    if (this.injecting && this.injectFault()) return -1;
    const zonelist = this.mem.fallbackOrder(node);
    for (let i = 0; i < zonelist.length; i++) {
      const pfn = this.allocFromNode(zonelist[i]!, order);
      if (pfn >= 0) return pfn;
    }
    return -1;
  }

  /** alloc_pages(): from node 0's zonelist, as a caller without a node preference. */
  allocPages(order: number): number {
    return this.allocPagesNode(0, order);
  }

  private allocFromNode(node: number, order: number): number {
    for (let o = order; o < MAX_ORDER; o++) {
      const pfn = this.heads[node * MAX_ORDER + o]!;
      if (pfn === NONE) continue;
      this.unlink(pfn, o, node);
      // expand(): give the upper halves back, largest first
      for (let h = o - 1; h >= order; h--) this.link(pfn + (1 << h), h, node);
      this.allocOrder[pfn] = order;
      this.nrFree[node]! -= 1 << order;
      return pfn;
    }
    return -1;
  }

  /** __free_pages(): returns a block from allocPagesNode. Refuses anything else, changing nothing. */
  freePages(pfn: number, order: number): void {
    const fn = '__free_pages';
    checkInt(fn, 'pfn', pfn, 0, this.mem.nrPages - 1);
    checkInt(fn, 'order', order, 0, MAX_ORDER - 1);
    const have = this.allocOrder[pfn]!;
    if (have === NONE)
      throw new MemError('EBUSY', fn, 'pfn', `${pfn} is not the start of an allocated block (double free?)`);
    if (have !== order)
      throw new MemError('EINVAL', fn, 'order', `${order} does not match the allocated order ${have} of pfn ${pfn}`);
    this.allocOrder[pfn] = NONE;
    this.onFree?.(pfn, order);
    this.freeBlock(pfn, order, this.mem.pfnToNid(pfn));
  }

  /** Puts a block on the free lists, coalescing with free buddies inside the node. */
  private freeBlock(pfn: number, order: number, node: number): void {
    this.nrFree[node]! += 1 << order;
    const start = this.mem.nodeStartPfn(node);
    const end = this.mem.nodeEndPfn(node);
    while (order < MAX_ORDER - 1) {
      const buddy = pfn ^ (1 << order);
      if (buddy < start || buddy + (1 << order) > end || this.freeOrder[buddy] !== order) break;
      this.unlink(buddy, order, node);
      pfn = Math.min(pfn, buddy);
      order++;
    }
    this.link(pfn, order, node);
  }

  private link(pfn: number, order: number, node: number): void {
    const h = node * MAX_ORDER + order;
    const head = this.heads[h]!;
    this.next[pfn] = head;
    this.prev[pfn] = NONE;
    if (head !== NONE) this.prev[head] = pfn;
    this.heads[h] = pfn;
    this.freeOrder[pfn] = order;
    this.nrFreeBlocks[h]!++;
  }

  private unlink(pfn: number, order: number, node: number): void {
    const h = node * MAX_ORDER + order;
    const n = this.next[pfn]!;
    const p = this.prev[pfn]!;
    if (p === NONE) this.heads[h] = n;
    else this.next[p] = n;
    if (n !== NONE) this.prev[n] = p;
    this.next[pfn] = NONE;
    this.prev[pfn] = NONE;
    this.freeOrder[pfn] = NONE;
    this.nrFreeBlocks[h]!--;
  }

  /** The allocated order of the block starting at pfn, or -1. */
  allocatedOrder(pfn: number): number {
    return this.allocOrder[pfn]!;
  }

  totalFree(): number {
    let s = 0;
    for (let n = 0; n < this.mem.nodes; n++) s += this.nrFree[n]!;
    return s;
  }

  totalManaged(): number {
    let s = 0;
    for (let n = 0; n < this.mem.nodes; n++) s += this.managed[n]!;
    return s;
  }

  /** Free block counts per order for one node (like one row of /proc/buddyinfo). */
  buddyinfo(node: number): number[] {
    return Array.from(this.nrFreeBlocks.subarray(node * MAX_ORDER, (node + 1) * MAX_ORDER));
  }

  /** A copy of the full free-list state, for comparing before and after. */
  snapshot(): { nrFree: number[]; blocks: number[]; lists: number[][] } {
    const lists: number[][] = [];
    for (let h = 0; h < this.heads.length; h++) {
      const l: number[] = [];
      for (let p = this.heads[h]!; p !== NONE; p = this.next[p]!) l.push(p);
      lists.push(l.sort((a, b) => a - b));
    }
    return { nrFree: Array.from(this.nrFree), blocks: Array.from(this.nrFreeBlocks), lists };
  }

  /**
   * Checks the accounting against the lists, from scratch. Returns a list of problems
   * (empty when consistent). Used by tests and checkers; never mutates.
   */
  audit(): string[] {
    const problems: string[] = [];
    const seen = new Uint8Array(this.mem.nrPages);
    for (let node = 0; node < this.mem.nodes; node++) {
      let pages = 0;
      for (let o = 0; o < MAX_ORDER; o++) {
        let count = 0;
        for (let p = this.heads[node * MAX_ORDER + o]!; p !== NONE; p = this.next[p]!) {
          count++;
          pages += 1 << o;
          if (this.freeOrder[p] !== o) problems.push(`pfn ${p} on order-${o} list has order ${this.freeOrder[p]}`);
          if (p % (1 << o)) problems.push(`pfn ${p} is not aligned to order ${o}`);
          if (this.mem.pfnToNid(p) !== node) problems.push(`pfn ${p} on node ${node}'s list`);
          for (let q = p; q < p + (1 << o); q++) {
            if (seen[q]) problems.push(`pfn ${q} is free twice`);
            seen[q] = 1;
          }
        }
        if (count !== this.nrFreeBlocks[node * MAX_ORDER + o])
          problems.push(
            `node ${node} order ${o}: ${count} blocks listed, ${this.nrFreeBlocks[node * MAX_ORDER + o]} counted`,
          );
      }
      if (pages !== this.nrFree[node])
        problems.push(`node ${node}: ${pages} free pages listed, ${this.nrFree[node]} counted`);
    }
    for (let p = 0; p < this.mem.nrPages; p++) {
      const o = this.allocOrder[p]!;
      if (o === NONE) continue;
      for (let q = p; q < p + (1 << o); q++) if (seen[q]) problems.push(`pfn ${q} is both free and allocated`);
    }
    return problems;
  }
}
