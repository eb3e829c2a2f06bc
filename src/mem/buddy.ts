/**
 * The page allocator: a binary buddy allocator per node, orders 0..MAX_ORDER-1.
 *
 * Free blocks sit on per-node, per-order lists (head insertion, head removal, as the
 * kernel's free_area lists do), linked through two Int32 arrays indexed by pfn. Only the
 * allocator actor's thread calls into it, so its bookkeeping lives outside the shared buffer.
 * Every per-page array holds its value plus one, so that zero, what a new array holds, is
 * "none": the host backs only the parts of them that pages in use touch.
 */
import { MemError, checkInt } from './errors.ts';
import { MAX_ORDER } from './layout.ts';
import type { PhysMem } from './phys.ts';
import type { Prng } from '../util/prng.ts';

const NONE = 0;
const TOP = MAX_ORDER - 1;

export interface FaultInjection {
  /** fail the Nth call from now (1 = the next call) */
  failNth?: number;
  /** fail each call with this probability, drawn from `prng` */
  failRate?: number;
  prng?: Prng;
}

export class BuddyAllocator {
  /** pfn + 1 of the next and previous free block on the list, or NONE */
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** order + 1 of the free block that starts at pfn, or NONE */
  private readonly freeOrder: Int8Array;
  /** order + 1 of the allocated block that starts at pfn, or NONE */
  private readonly allocOrder: Int8Array;
  /** pfn + 1 of each list's first block, or NONE; index node * MAX_ORDER + order */
  private readonly heads: Int32Array;
  /**
   * The lists of the top order, per node, as runs of consecutive blocks: [lo, hi, lo, hi, ...],
   * the last run first on the list, each run from its highest block down. A top-order block
   * is only ever put at the head (a free, or mm init's blocks in rising order) and taken from
   * the head (merges stop below the top order), so runs say what links would say, and the
   * many blocks mm init hands over never touch the per-page arrays until they are split.
   */
  private readonly topRuns: number[][];
  /** number of free blocks, index node * MAX_ORDER + order */
  readonly nrFreeBlocks: Int32Array;
  /** free pages per node */
  readonly nrFree: Int32Array;
  /** pages ever handed to the allocator, per node (managed pages) */
  readonly managed: Int32Array;
  /** the pfn ranges [start, end) handed to the allocator (addRange) */
  private readonly ranges: [number, number][] = [];

  private injection: FaultInjection = {};
  /** whether any fault injection is set: the common case skips injectFault() altogether */
  private injecting = false;
  private calls = 0;
  /** sees every block given back, before it is free (the memory-management protocol checker) */
  onFree: ((pfn: number, order: number) => void) | null = null;

  constructor(readonly mem: PhysMem) {
    const n = mem.nrPages;
    this.next = new Int32Array(n);
    this.prev = new Int32Array(n);
    this.freeOrder = new Int8Array(n);
    this.allocOrder = new Int8Array(n);
    this.heads = new Int32Array(mem.nodes * MAX_ORDER);
    this.topRuns = Array.from({ length: mem.nodes }, () => []);
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
    // the ranges handed over so far say which pages are managed, without a visit to each page
    for (const [s, e] of this.ranges)
      if (s < endPfn && startPfn < e)
        throw new MemError('EBUSY', fn, 'range', `page ${Math.max(s, startPfn)} is already managed`);
    if (endPfn > startPfn) this.ranges.push([startPfn, endPfn]);
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
      let pfn: number;
      if (o === TOP) {
        const runs = this.topRuns[node]!;
        if (!runs.length) continue;
        pfn = runs[runs.length - 1]! - (1 << TOP);
        if (pfn === runs[runs.length - 2]) runs.length -= 2;
        else runs[runs.length - 1] = pfn;
        this.nrFreeBlocks[node * MAX_ORDER + TOP]!--;
      } else {
        const head = this.heads[node * MAX_ORDER + o]!;
        if (head === NONE) continue;
        pfn = head - 1;
        this.unlink(pfn, o, node);
      }
      // expand(): give the upper halves back, largest first
      for (let h = o - 1; h >= order; h--) this.link(pfn + (1 << h), h, node);
      this.allocOrder[pfn] = order + 1;
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
    const have = this.allocOrder[pfn]! - 1;
    if (have < 0)
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
      if (buddy < start || buddy + (1 << order) > end || this.freeOrder[buddy] !== order + 1) break;
      this.unlink(buddy, order, node);
      pfn = Math.min(pfn, buddy);
      order++;
    }
    this.link(pfn, order, node);
  }

  private link(pfn: number, order: number, node: number): void {
    const h = node * MAX_ORDER + order;
    if (order === TOP) {
      const runs = this.topRuns[node]!;
      if (runs.length && runs[runs.length - 1] === pfn) runs[runs.length - 1] = pfn + (1 << TOP);
      else runs.push(pfn, pfn + (1 << TOP));
      this.nrFreeBlocks[h]!++;
      return;
    }
    const head = this.heads[h]!;
    this.next[pfn] = head;
    this.prev[pfn] = NONE;
    if (head !== NONE) this.prev[head - 1] = pfn + 1;
    this.heads[h] = pfn + 1;
    this.freeOrder[pfn] = order + 1;
    this.nrFreeBlocks[h]!++;
  }

  /** Takes a free block of an order below the top off its list. */
  private unlink(pfn: number, order: number, node: number): void {
    const h = node * MAX_ORDER + order;
    const n = this.next[pfn]!;
    const p = this.prev[pfn]!;
    if (p === NONE) this.heads[h] = n;
    else this.next[p - 1] = n;
    if (n !== NONE) this.prev[n - 1] = p;
    this.next[pfn] = NONE;
    this.prev[pfn] = NONE;
    this.freeOrder[pfn] = NONE;
    this.nrFreeBlocks[h]!--;
  }

  /** The allocated order of the block starting at pfn, or -1. */
  allocatedOrder(pfn: number): number {
    return this.allocOrder[pfn]! - 1;
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

  /** The blocks on list h (node * MAX_ORDER + order), head first. */
  private list(h: number): number[] {
    const l: number[] = [];
    if (h % MAX_ORDER === TOP) {
      const runs = this.topRuns[(h - TOP) / MAX_ORDER]!;
      for (let r = runs.length - 2; r >= 0; r -= 2)
        for (let p = runs[r + 1]! - (1 << TOP); p >= runs[r]!; p -= 1 << TOP) l.push(p);
    } else for (let p = this.heads[h]! - 1; p >= 0; p = this.next[p]! - 1) l.push(p);
    return l;
  }

  /** A copy of the full free-list state, for comparing before and after. */
  snapshot(): { nrFree: number[]; blocks: number[]; lists: number[][] } {
    const lists: number[][] = [];
    for (let h = 0; h < this.heads.length; h++) lists.push(this.list(h).sort((a, b) => a - b));
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
        for (const p of this.list(node * MAX_ORDER + o)) {
          count++;
          pages += 1 << o;
          if (o < TOP && this.freeOrder[p] !== o + 1)
            problems.push(`pfn ${p} on order-${o} list has order ${this.freeOrder[p]! - 1}`);
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
      const o = this.allocOrder[p]! - 1;
      if (o < 0) continue;
      for (let q = p; q < p + (1 << o); q++) if (seen[q]) problems.push(`pfn ${q} is both free and allocated`);
    }
    return problems;
  }
}
