/**
 * The vmalloc range: virtual areas (get_vm_area, pcpu_get_vm_areas) and the page table that
 * maps their pages to page frames. The page table lives in the shared buffer, so every thread
 * translates through it (see access.ts); areas are bookkeeping of the actor's thread only.
 *
 * Flushes are counted, not simulated: there is no TLB to keep coherent here.
 */
import { MemError, checkInt, checkPow2 } from './errors.ts';
import { F_BASE_BYTE, F_CACHE_FLUSHES, F_TLB_FLUSHES, H_PT_GEN, PAGE_SIZE, VMALLOC_START } from './layout.ts';
import type { PhysMem } from './phys.ts';

export interface VmArea {
  readonly addr: number;
  readonly size: number;
  /** who asked for it, for /proc/vmallocinfo-style listings */
  readonly caller: string;
}

/**
 * What an observer of the page table sees (the memory-management protocol checker): every
 * entry that changes, with its old and new pfn (-1 for none), and every generation bump.
 */
export interface PtObserver {
  pte(vpn: number, oldPfn: number, newPfn: number): void;
  gen(value: number): void;
}

/** get_vm_area puts one unmapped guard page after every area, as VM_ALLOC areas have. */
const GUARD = PAGE_SIZE;

export class VmSpace {
  readonly start = VMALLOC_START;
  readonly end: number;
  /** vmalloc page -> pfn + 1, 0 when not present */
  readonly pt: Int32Array;
  private readonly flushes: Float64Array;
  private readonly header: Int32Array;
  /** live areas sorted by address */
  private areas: VmArea[] = [];
  /**
   * Where the last pcpu_get_vm_areas() search ended. The downward search finds the highest
   * aligned base at which no group collides with anything (each jump moves the group that
   * collided just below the area it hit, so it skips only bases where that group collides).
   * Areas added since cannot make room above that base; only freeing an area that reaches
   * above it (its guard page included) can, since every group lies at or above the base.
   * Until then a search for the same groups and alignment may start there: the same answer,
   * without walking past every chunk created before.
   */
  private resume: { offsets: readonly number[]; sizes: readonly number[]; align: number; base: number } | null = null;
  /** sees every entry change and generation bump (null: nobody watches) */
  observer: PtObserver | null = null;
  /** a bug to build in: unmapRange() bumps the generation before it clears the entries */
  genBeforeClear = false;

  constructor(readonly mem: PhysMem) {
    const l = mem.layout;
    this.end = VMALLOC_START + l.vmallocBytes;
    this.pt = new Int32Array(mem.sab, l.ptOffset, l.vmallocPages);
    this.flushes = new Float64Array(mem.sab, F_BASE_BYTE, 2);
    this.header = new Int32Array(mem.sab, 0, PAGE_SIZE / 4);
  }

  get tlbFlushes(): number {
    return this.flushes[F_TLB_FLUSHES]!;
  }

  get cacheFlushes(): number {
    return this.flushes[F_CACHE_FLUSHES]!;
  }

  list(): VmArea[] {
    return [...this.areas];
  }

  isVmallocAddr(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }

  /** get_vm_area(): the lowest free range of `size` bytes (page multiple), or null. */
  getVmArea(size: number, caller = 'get_vm_area', align = PAGE_SIZE): VmArea | null {
    const fn = 'get_vm_area';
    checkInt(fn, 'size', size, PAGE_SIZE, this.end - this.start);
    if (size % PAGE_SIZE) throw new MemError('EINVAL', fn, 'size', `must be a multiple of ${PAGE_SIZE}, got ${size}`);
    checkPow2(fn, 'align', align);
    let addr = this.start;
    for (const a of this.areas) {
      addr = alignUp(addr, align);
      if (addr + size + GUARD <= a.addr) break;
      addr = Math.max(addr, a.addr + a.size + GUARD);
    }
    addr = alignUp(addr, align);
    if (addr + size + GUARD > this.end) return null;
    return this.insert({ addr, size, caller });
  }

  /**
   * pcpu_get_vm_areas(): one area per group such that area[g].addr - offsets[g] is the same
   * base for every group, base aligned to `align`. Searched from the top of the range down, as
   * the kernel does, so that percpu chunks stay away from ordinary vmalloc users. Returns the
   * areas, or null when no base fits.
   */
  getVmAreas(offsets: readonly number[], sizes: readonly number[], align: number): VmArea[] | null {
    const fn = 'pcpu_get_vm_areas';
    if (offsets.length === 0 || offsets.length !== sizes.length)
      throw new MemError('EINVAL', fn, 'offsets', 'must be non-empty and as long as sizes');
    checkPow2(fn, 'align', align);
    if (align < PAGE_SIZE) throw new MemError('EINVAL', fn, 'align', `must be at least ${PAGE_SIZE}`);
    offsets.forEach((o, g) => {
      checkInt(fn, `offsets[${g}]`, o, 0, this.end - this.start);
      if (o % PAGE_SIZE) throw new MemError('EINVAL', fn, `offsets[${g}]`, 'must be page aligned');
      checkInt(fn, `sizes[${g}]`, sizes[g], PAGE_SIZE, this.end - this.start);
      if (sizes[g]! % PAGE_SIZE) throw new MemError('EINVAL', fn, `sizes[${g}]`, 'must be page aligned');
    });
    for (let a = 0; a < offsets.length; a++)
      for (let b = a + 1; b < offsets.length; b++)
        if (offsets[a]! < offsets[b]! + sizes[b]! && offsets[b]! < offsets[a]! + sizes[a]!)
          throw new MemError('EINVAL', fn, 'offsets', `groups ${a} and ${b} overlap`);
    let last = 0;
    for (let g = 0; g < offsets.length; g++) last = Math.max(last, offsets[g]! + sizes[g]!);
    let base = alignDown(this.end - last - GUARD, align);
    const r = this.resume;
    if (
      r &&
      r.align === align &&
      r.offsets.length === offsets.length &&
      r.offsets.every((o, g) => o === offsets[g] && r.sizes[g] === sizes[g])
    )
      base = r.base;
    while (base >= this.start) {
      let conflict: VmArea | null = null;
      let g = 0;
      for (; g < offsets.length && !conflict; g++) {
        const s = base + offsets[g]!;
        const e = s + sizes[g]! + GUARD;
        conflict = this.lastAreaBefore(e);
        if (conflict && conflict.addr + conflict.size + GUARD <= s) conflict = null;
      }
      if (!conflict) {
        const found = offsets.map((o, i) =>
          this.insert({ addr: base + o, size: sizes[i]!, caller: 'pcpu_get_vm_areas' }),
        );
        this.resume = { offsets: [...offsets], sizes: [...sizes], align, base };
        return found;
      }
      // move the group that collided to just below the area it hit
      const gi = g - 1;
      base = alignDown(conflict.addr - GUARD - sizes[gi]! - offsets[gi]!, align);
    }
    return null;
  }

  /** free_vm_area(): unmaps what is still mapped and releases the range. */
  freeVmArea(area: VmArea): void {
    // areas are sorted by address and never overlap: the one that starts at area.addr, if any
    const i = this.firstAreaFrom(area.addr);
    if (this.areas[i] !== area)
      throw new MemError(
        'EBUSY',
        'free_vm_area',
        'area',
        `0x${area.addr.toString(16)} is not a live area (double free?)`,
      );
    this.unmapRange(area.addr, area.size);
    this.areas.splice(i, 1);
    if (this.resume && area.addr + area.size + GUARD > this.resume.base) this.resume = null;
  }

  /** The live area containing addr (find_vm_area), or null. */
  findArea(addr: number): VmArea | null {
    let lo = 0;
    let hi = this.areas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const a = this.areas[mid]!;
      if (addr < a.addr) hi = mid - 1;
      else if (addr >= a.addr + a.size) lo = mid + 1;
      else return a;
    }
    return null;
  }

  /**
   * map_kernel_range_noflush(): maps pfns[i] at addr + i * PAGE_SIZE. The range must lie in
   * one live area and be unmapped; otherwise nothing is changed.
   */
  mapPages(addr: number, pfns: readonly number[]): void {
    const fn = 'map_kernel_range_noflush';
    this.checkRange(fn, addr, pfns.length * PAGE_SIZE);
    const vpn0 = (addr - this.start) / PAGE_SIZE;
    const nrPages = this.mem.nrPages;
    for (let i = 0; i < pfns.length; i++) {
      const pfn = pfns[i]!;
      // the message (a string per page) only when it is needed
      if (!(Number.isInteger(pfn) && pfn >= 0 && pfn < nrPages)) checkInt(fn, `pfns[${i}]`, pfn, 0, nrPages - 1);
      if (this.pt[vpn0 + i] !== 0)
        throw new MemError('EBUSY', fn, 'addr', `0x${(addr + i * PAGE_SIZE).toString(16)} is already mapped`);
    }
    for (let i = 0; i < pfns.length; i++) {
      Atomics.store(this.pt, vpn0 + i, pfns[i]! + 1);
      this.observer?.pte(vpn0 + i, -1, pfns[i]!);
    }
  }

  /**
   * unmap_kernel_range_noflush(): clears the range; unmapped pages are skipped. The entries
   * change first and the generation after, and only when an entry did change: a CPU that reads
   * the generation, walks and finds the generation unchanged (access.ts) has read a current
   * entry.
   */
  unmapRange(addr: number, size: number): void {
    this.checkRange('unmap_kernel_range_noflush', addr, size, false);
    const vpn0 = (addr - this.start) / PAGE_SIZE;
    if (this.genBeforeClear && size > 0) this.bump();
    let changed = false;
    for (let i = 0; i < size / PAGE_SIZE; i++) {
      const old = Atomics.exchange(this.pt, vpn0 + i, 0);
      if (old === 0) continue;
      changed = true;
      this.observer?.pte(vpn0 + i, old - 1, -1);
    }
    if (changed && !this.genBeforeClear) this.bump();
  }

  private bump(): void {
    const g = Atomics.add(this.header, H_PT_GEN, 1) + 1;
    this.observer?.gen(g);
  }

  /** The generation of the page table now: bumped after every change that unmaps a page. */
  get generation(): number {
    return Atomics.load(this.header, H_PT_GEN);
  }

  /** vmalloc_to_page(): the pfn mapped at addr, or -1. */
  vmallocToPfn(addr: number): number {
    if (!this.isVmallocAddr(addr)) return -1;
    return Atomics.load(this.pt, Math.floor((addr - this.start) / PAGE_SIZE)) - 1;
  }

  flushCacheVmap(): void {
    this.flushes[F_CACHE_FLUSHES]!++;
  }

  flushTlbKernelRange(): void {
    this.flushes[F_TLB_FLUSHES]!++;
  }

  private checkRange(fn: string, addr: number, size: number, inArea = true): void {
    if (
      typeof addr !== 'number' ||
      !Number.isInteger(addr) ||
      addr % PAGE_SIZE ||
      addr < this.start ||
      addr >= this.end
    )
      throw new MemError('EINVAL', fn, 'addr', `must be a page aligned vmalloc address, got ${String(addr)}`);
    checkInt(fn, 'size', size, 0, this.end - addr);
    if (size % PAGE_SIZE) throw new MemError('EINVAL', fn, 'size', 'must be a multiple of the page size');
    if (inArea && size > 0) {
      const a = this.findArea(addr);
      if (!a || addr + size > a.addr + a.size)
        throw new MemError(
          'EFAULT',
          fn,
          'addr',
          `[0x${addr.toString(16)}, +0x${size.toString(16)}) is not inside one vm area`,
        );
    }
  }

  /** The live area with the highest address below `addr`, or null. */
  private lastAreaBefore(addr: number): VmArea | null {
    const i = this.firstAreaFrom(addr);
    return i > 0 ? this.areas[i - 1]! : null;
  }

  /** The index of the first live area whose address is `addr` or above (binary search). */
  private firstAreaFrom(addr: number): number {
    let lo = 0;
    let hi = this.areas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.areas[mid]!.addr < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insert(a: VmArea): VmArea {
    this.areas.splice(this.firstAreaFrom(a.addr), 0, a);
    return a;
  }
}

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
export const alignDown = (n: number, a: number): number => Math.floor(n / a) * a;
