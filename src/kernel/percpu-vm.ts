/**
 * mm/percpu-vm.c (2010): chunks live in congruent vmalloc areas, one per group, and are
 * populated page by page on demand. Every possible CPU gets its own page from its own node.
 *
 * Population and depopulation share one scratch page array and bitmap, as the kernel's do
 * (pcpu_get_pages_and_bitmap): exclusion is pcpu_alloc_mutex's job, and the scratch is held
 * across the sleeping window so that a caller who breaks that rule gets the kernel's
 * corruption, for the checkers to find.
 */
import type { VmArea } from '../mem/vmalloc.ts';
import type { PcpuAllocInfo, PcpuBackend } from './percpu-internal.ts';
import { KernelBug } from './bug.ts';
import type { PcpuChunk } from './chunk.ts';
import { PAGE_SIZE, PFN_DOWN, PFN_UP } from './constants.ts';
import type { Percpu } from './percpu.ts';
import { type KTask, sleepStep, watchpoint } from './steps.ts';

const ENOMEM = -12;

export class PercpuVm implements PcpuBackend {
  readonly name = 'vm' as const;
  /** the scratch page array: pfn per (cpu, page), -1 for none */
  private scratch_pages: Int32Array | null = null;
  /** the scratch populated bitmap */
  private scratch_populated: Uint8Array | null = null;
  /** how many paths hold the scratch right now; more than one is the kernel's corruption */
  scratch_users = 0;
  scratch_overlaps = 0;

  constructor(private readonly pc: Percpu) {}

  private page_idx(cpu: number, page: number): number {
    return cpu * this.pc.pcpu_unit_pages + page;
  }

  /**
   * pcpu_get_pages_and_bitmap(): the shared scratch, with the bitmap loaded from the chunk.
   * Needs pcpu_alloc_mutex (nothing else keeps two users apart).
   */
  private pcpu_get_pages_and_bitmap(chunk: PcpuChunk): [Int32Array, Uint8Array] {
    if (!this.scratch_pages) {
      this.scratch_pages = new Int32Array(this.pc.nr_cpu_ids * this.pc.pcpu_unit_pages).fill(-1);
      this.scratch_populated = new Uint8Array(this.pc.pcpu_unit_pages);
    }
    if (++this.scratch_users > 1) this.scratch_overlaps++;
    this.pc.WRITE('scratch', null, 'pcpu_get_pages_and_bitmap');
    this.pc.READ('populated', chunk, 'pcpu_get_pages_and_bitmap');
    this.scratch_populated!.set(chunk.populated);
    return [this.scratch_pages, this.scratch_populated!];
  }

  private put_scratch(): void {
    this.scratch_users--;
  }

  /** Calls fn(rs, re) for each maximal run of pages in [start, end) whose populated bit is `want`. */
  private forEachRegion(
    chunk: PcpuChunk,
    want: number,
    start: number,
    end: number,
    fn: (rs: number, re: number) => void,
  ): void {
    let rs = start;
    while (rs < end) {
      while (rs < end && chunk.populated[rs] !== want) rs++;
      let re = rs;
      while (re < end && chunk.populated[re] === want) re++;
      if (rs < re) fn(rs, re);
      rs = re;
    }
  }

  /**
   * pcpu_alloc_pages(): a page per CPU for each page of [start, end), from the CPU's node.
   * On failure frees exactly what this call allocated. Returns 0 or -ENOMEM.
   */
  private pcpu_alloc_pages(pages: Int32Array, start: number, end: number): number {
    const m = this.pc.machine;
    for (let cpu = 0; cpu < this.pc.nr_cpu_ids; cpu++) {
      for (let i = start; i < end; i++) {
        const pfn = m.buddy.allocPagesNode(this.pc.mutant('pages-from-node-0') ? 0 : m.cpuToNode(cpu), 0);
        pages[this.page_idx(cpu, i)] = pfn;
        if (pfn < 0) {
          this.pcpu_free_pages(pages, start, end);
          return ENOMEM;
        }
      }
    }
    return 0;
  }

  /** pcpu_free_pages(): frees the scratch's pages for [start, end) and forgets them. */
  private pcpu_free_pages(pages: Int32Array, start: number, end: number): void {
    const m = this.pc.machine;
    for (let cpu = 0; cpu < this.pc.nr_cpu_ids; cpu++)
      for (let i = start; i < end; i++) {
        const k = this.page_idx(cpu, i);
        const pfn = pages[k]!;
        if (pfn >= 0) {
          m.mem.setPageChunk(pfn, -1);
          m.mem.setPageCpu(pfn, -1);
          m.buddy.freePages(pfn, 0);
        }
        pages[k] = -1;
      }
  }

  /**
   * pcpu_map_pages(): maps the scratch's pages for [start, end) into every unit, links each
   * page to the chunk and marks the pages populated in the scratch bitmap.
   */
  private pcpu_map_pages(chunk: PcpuChunk, pages: Int32Array, populated: Uint8Array, start: number, end: number): void {
    const m = this.pc.machine;
    for (let cpu = 0; cpu < this.pc.nr_cpu_ids; cpu++) {
      const pfns: number[] = [];
      for (let i = start; i < end; i++) pfns.push(pages[this.page_idx(cpu, i)]!);
      m.vm.mapPages(this.pc.pcpu_chunk_addr(chunk, cpu, start), pfns);
    }
    for (let i = start; i < end; i++) {
      this.pc.WRITE('page', chunk, 'pcpu_map_pages', i);
      for (let cpu = 0; cpu < this.pc.nr_cpu_ids; cpu++) {
        const pfn = pages[this.page_idx(cpu, i)]!;
        m.mem.setPageChunk(pfn, chunk.id);
        m.mem.setPageCpu(pfn, cpu);
      }
      populated[i] = 1;
    }
  }

  /** pcpu_unmap_pages(): unmaps [start, end) in every unit, collecting the pages into the scratch. */
  private pcpu_unmap_pages(
    chunk: PcpuChunk,
    pages: Int32Array,
    populated: Uint8Array,
    start: number,
    end: number,
  ): void {
    const m = this.pc.machine;
    for (let i = start; i < end; i++) this.pc.WRITE('page', chunk, 'pcpu_unmap_pages', i);
    for (let cpu = 0; cpu < this.pc.nr_cpu_ids; cpu++) {
      for (let i = start; i < end; i++) {
        const pfn = m.vm.vmallocToPfn(this.pc.pcpu_chunk_addr(chunk, cpu, i));
        if (pfn < 0) this.pc.WARN('at mm/percpu-vm.c pcpu_unmap_pages(): WARN_ON(!page)');
        pages[this.page_idx(cpu, i)] = pfn;
      }
      m.vm.unmapRange(this.pc.pcpu_chunk_addr(chunk, cpu, start), (end - start) * PAGE_SIZE);
    }
    for (let i = start; i < end; i++) populated[i] = 0;
  }

  *pcpu_populate_chunk(chunk: PcpuChunk, off: number, size: number): KTask<number> {
    this.pc.pcpu_chunk_check_alive(chunk, 'pcpu_populate_chunk');
    const page_start = PFN_DOWN(off);
    const page_end = PFN_UP(off + size);

    if (this.pc.kcsan_delay) yield watchpoint('pcpu_populate_chunk');
    this.pc.READ('populated', chunk, 'pcpu_populate_chunk');
    let all = true;
    for (let i = page_start; i < page_end && all; i++) all = chunk.populated[i] === 1;
    if (!all) {
      if (chunk.immutable) this.pc.WARN('at mm/percpu-vm.c pcpu_populate_chunk(): WARN_ON(chunk->immutable)');
      const [pages, populated] = this.pcpu_get_pages_and_bitmap(chunk);
      let rc = 0;
      let free_end = page_start;
      this.forEachRegion(chunk, 0, page_start, page_end, (rs, re) => {
        if (rc) return;
        rc = this.pcpu_alloc_pages(pages, rs, re);
        if (!rc) free_end = re;
      });
      // page allocation may sleep, with the scratch held
      yield sleepStep('pcpu_populate_chunk', chunk.id);
      if (rc) {
        this.forEachRegion(chunk, 0, page_start, free_end, (rs, re) => this.pcpu_free_pages(pages, rs, re));
        this.put_scratch();
        return ENOMEM;
      }
      if (this.pc.kcsan_delay) yield watchpoint('pcpu_populate_chunk');
      this.pc.READ('scratch', null, 'pcpu_populate_chunk');
      this.forEachRegion(chunk, 0, page_start, page_end, (rs, re) =>
        this.pcpu_map_pages(chunk, pages, populated, rs, re),
      );
      this.pc.machine.vm.flushCacheVmap();
      this.pc.WRITE('populated', chunk, 'pcpu_populate_chunk');
      chunk.populated.set(populated); // commit the new bitmap
      this.forEachRegion(chunk, 1, page_start, page_end, (rs, re) => {
        for (let cpu = 0; cpu < this.pc.nr_cpu_ids; cpu++)
          for (let i = rs; i < re; i++) pages[this.page_idx(cpu, i)] = -1;
      });
      this.put_scratch();
    }

    // clear: the new area reads as zero in every unit
    if (this.pc.mutant('populate-no-zero')) return 0;
    const nr_zeroed = this.pc.nr_cpu_ids - (this.pc.mutant('populate-zeroes-short') ? 1 : 0);
    // memset() of the area in each possible CPU's unit
    const cpu = this.pc.machine.access.fillUnits(chunk.base_addr + off, this.pc.pcpu_unit_offsets, nr_zeroed, 0, size);
    if (cpu >= 0)
      throw new KernelBug(
        'BUG_ON',
        `pcpu_populate_chunk: chunk ${chunk.id} offset ${off} is not mapped for cpu ${cpu}`,
      );
    return 0;
  }

  *pcpu_depopulate_chunk(chunk: PcpuChunk, off: number, size: number): KTask<void> {
    const page_start = PFN_DOWN(off);
    const page_end = PFN_UP(off + size);

    if (this.pc.kcsan_delay) yield watchpoint('pcpu_depopulate_chunk');
    this.pc.READ('populated', chunk, 'pcpu_depopulate_chunk');
    let none = true;
    for (let i = page_start; i < page_end && none; i++) none = chunk.populated[i] === 0;
    if (none) return;
    if (chunk.immutable) this.pc.WARN('at mm/percpu-vm.c pcpu_depopulate_chunk(): WARN_ON(chunk->immutable)');

    const [pages, populated] = this.pcpu_get_pages_and_bitmap(chunk);
    if (this.pc.mutant('depopulate-free-before-unmap')) {
      // the pages go back first, and the entries that map them stay across a sleep
      this.forEachRegion(chunk, 1, page_start, page_end, (rs, re) => {
        for (let cpu = 0; cpu < this.pc.nr_cpu_ids; cpu++)
          for (let i = rs; i < re; i++)
            pages[this.page_idx(cpu, i)] = this.pc.machine.vm.vmallocToPfn(this.pc.pcpu_chunk_addr(chunk, cpu, i));
        this.pcpu_free_pages(pages, rs, re);
      });
      yield sleepStep('pcpu_depopulate_chunk', chunk.id);
    }
    this.pc.machine.vm.flushCacheVmap(); // pcpu_pre_unmap_flush
    this.forEachRegion(chunk, 1, page_start, page_end, (rs, re) =>
      this.pcpu_unmap_pages(chunk, pages, populated, rs, re),
    );
    // vunmap may sleep, with the scratch held
    yield sleepStep('pcpu_depopulate_chunk', chunk.id);
    if (this.pc.kcsan_delay) yield watchpoint('pcpu_depopulate_chunk');
    this.pc.READ('scratch', null, 'pcpu_depopulate_chunk');
    if (!this.pc.mutant('depopulate-free-before-unmap'))
      this.forEachRegion(chunk, 1, page_start, page_end, (rs, re) => this.pcpu_free_pages(pages, rs, re));
    this.pc.WRITE('populated', chunk, 'pcpu_depopulate_chunk');
    chunk.populated.set(populated); // commit the new bitmap
    this.put_scratch();
  }

  *pcpu_create_chunk(): KTask<PcpuChunk | null> {
    const pc = this.pc;
    const chunk = pc.pcpu_alloc_chunk();
    if (!chunk) return null;
    yield sleepStep('pcpu_create_chunk', -1);
    const vms = pc.machine.vm.getVmAreas(
      pc.pcpu_group_offsets,
      pc.pcpu_group_sizes,
      Math.max(pc.pcpu_atom_size, PAGE_SIZE),
    );
    if (!vms) {
      pc.pcpu_free_chunk(chunk);
      return null;
    }
    pc.WRITE('vm', chunk, 'pcpu_create_chunk');
    chunk.data = vms;
    chunk.base_addr = vms[0]!.addr - pc.pcpu_group_offsets[0]!;
    return pc.pcpu_register_chunk(chunk);
  }

  *pcpu_destroy_chunk(chunk: PcpuChunk): KTask<void> {
    yield sleepStep('pcpu_destroy_chunk', chunk.id);
    this.pc.WRITE('vm', chunk, 'pcpu_destroy_chunk');
    for (const vm of (chunk.data as VmArea[] | null) ?? []) this.pc.machine.vm.freeVmArea(vm);
    this.pc.machine.vm.flushTlbKernelRange();
    chunk.data = null;
    this.pc.pcpu_free_chunk(chunk);
    this.pc.pcpu_unregister_chunk(chunk);
    chunk.destroyed = true;
  }

  pcpu_addr_to_pfn(addr: number): number {
    return this.pc.machine.vm.vmallocToPfn(addr);
  }

  pcpu_verify_alloc_info(_ai: PcpuAllocInfo): number {
    return 0; // no extra restriction
  }
}
